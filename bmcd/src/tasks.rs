//! Long operations as Redfish Tasks: created, advanced and finished here,
//! persisted in the store so that a restart shows what happened. A task that was
//! still running when bmcd stopped ends as `Interrupted`, never vanishes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use crate::error::Message;
use crate::events::EventService;
use crate::registries::base;
use crate::registries::task_event;
use crate::store::{Store, StoreError, TaskRecord};
use crate::time::now_unix;

/// How many finished tasks are kept.
const KEEP: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Running,
    Completed,
    Exception,
    Interrupted,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "Running",
            TaskState::Completed => "Completed",
            TaskState::Exception => "Exception",
            TaskState::Interrupted => "Interrupted",
        }
    }
}

pub struct Tasks {
    store: Store,
    events: Arc<EventService>,
    tasks: Mutex<BTreeMap<i64, TaskRecord>>,
}

impl Tasks {
    /// Loads the stored tasks; those left running by a previous bmcd end as
    /// `Interrupted`.
    pub async fn load(store: Store, events: Arc<EventService>) -> Result<Arc<Tasks>, StoreError> {
        let mut tasks = BTreeMap::new();
        for mut t in store.tasks().await? {
            if t.ended.is_none() {
                t.state = TaskState::Interrupted.as_str().to_owned();
                t.status = "Critical".to_owned();
                t.ended = Some(now_unix());
                t.messages.push(
                    Message::new(&base::OPERATION_FAILED, &[])
                        .resolution("The BMC restarted while this task ran. Start the operation again.")
                        .to_json(),
                );
                t = store.save_task(t).await?;
            }
            tasks.insert(t.id, t);
        }
        Ok(Arc::new(Tasks {
            store,
            events,
            tasks: Mutex::new(tasks),
        }))
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<i64, TaskRecord>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub async fn create(&self, name: &str, target: &str) -> Result<TaskRecord, StoreError> {
        let t = self
            .store
            .save_task(TaskRecord {
                id: 0,
                name: name.to_owned(),
                state: TaskState::Running.as_str().to_owned(),
                status: "OK".to_owned(),
                percent: 0,
                messages: Vec::new(),
                started: now_unix(),
                ended: None,
                target: target.to_owned(),
            })
            .await?;
        self.task_event(&t, &task_event::TASK_STARTED).await;
        let mut map = self.map();
        map.insert(t.id, t.clone());
        // Forget the oldest finished tasks beyond the limit.
        while map.len() > KEEP {
            let Some(oldest) = map.iter().find(|(_, t)| t.ended.is_some()).map(|(id, _)| *id) else {
                break;
            };
            map.remove(&oldest);
        }
        Ok(t)
    }

    /// Records progress (in memory; the end state is what is persisted).
    pub fn progress(&self, id: i64, percent: u8) {
        if let Some(t) = self.map().get_mut(&id) {
            t.percent = percent.min(99);
        }
    }

    pub async fn finish(&self, id: i64, state: TaskState, message: Message) -> Result<(), StoreError> {
        let updated = {
            let mut map = self.map();
            let Some(t) = map.get_mut(&id) else {
                return Ok(());
            };
            t.state = state.as_str().to_owned();
            t.status = match state {
                TaskState::Completed | TaskState::Running => "OK",
                TaskState::Exception | TaskState::Interrupted => "Critical",
            }
            .to_owned();
            if state == TaskState::Completed {
                t.percent = 100;
            }
            t.ended = Some(now_unix());
            t.messages.push(message.to_json());
            t.clone()
        };
        let def = match state {
            TaskState::Completed => &task_event::TASK_COMPLETED_OK,
            _ => &task_event::TASK_ABORTED,
        };
        self.task_event(&updated, def).await;
        self.store.save_task(updated).await?;
        self.store.prune_tasks(KEEP as i64).await
    }

    async fn task_event(&self, t: &TaskRecord, def: &crate::registries::MessageDef) {
        let id = t.id.to_string();
        let ev = self.events.event(
            task_event::PREFIX,
            task_event::VERSION,
            def,
            &[&id],
            format!("/redfish/v1/TaskService/Tasks/{id}"),
            "Task",
        );
        self.events.publish_or_log(ev).await;
    }

    pub fn get(&self, id: i64) -> Option<TaskRecord> {
        self.map().get(&id).cloned()
    }

    pub fn list(&self) -> Vec<TaskRecord> {
        self.map().values().cloned().collect()
    }
}

/// The messages of a task, as JSON.
pub fn messages(t: &TaskRecord) -> Value {
    Value::Array(t.messages.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn events_for(path: &std::path::Path) -> Arc<EventService> {
        let store = Store::open(path).expect("store");
        let (logs, _writer) = crate::logs::Logs::start(store.clone(), 100);
        EventService::load(store, logs).await.expect("events")
    }

    #[tokio::test]
    async fn running_tasks_are_interrupted_by_a_restart() {
        let dir = std::env::temp_dir().join(format!("bmcd-tasks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("s.db");
        {
            let tasks = Tasks::load(Store::open(&path).expect("store"), events_for(&path).await)
                .await
                .expect("load");
            let done = tasks.create("done", "/x").await.expect("create");
            tasks
                .finish(done.id, TaskState::Completed, Message::new(&base::SUCCESS, &[]))
                .await
                .expect("finish");
            let running = tasks.create("running", "/y").await.expect("create");
            tasks.progress(running.id, 40);
            assert_eq!(tasks.get(running.id).map(|t| t.percent), Some(40));
        }
        let tasks = Tasks::load(Store::open(&path).expect("store"), events_for(&path).await)
            .await
            .expect("load");
        let all = tasks.list();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].state, "Completed");
        assert_eq!(all[0].percent, 100);
        assert_eq!(all[1].state, "Interrupted");
        assert!(all[1].ended.is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
