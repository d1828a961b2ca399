//! DMTF TaskEvent message registry, transcribed from DMTF TaskEvent.1.1.0 (Release 2026.1).
//!
//! The `Description`, `Message`, `MessageSeverity` (identical to the
//! deprecated `Severity`), `ParamTypes` and `Resolution` texts below are
//! reproduced verbatim from the DMTF-published `TaskEvent.1.1.0` message
//! registry (Copyright DMTF in cooperation with SNIA).  `LongDescription`,
//! `Example`, `ClearingLogic` and the per-argument descriptions are
//! intentionally omitted.  Every message of the registry is included.  The
//! message texts are identical to those of the `TaskEvent.1.0.6` errata.
//!
//! In every message, `%1` is the `Id` of the `Task` resource.

pub use super::base::MessageDef;

pub const PREFIX: &str = "TaskEvent";
pub const VERSION: &str = "1.1.0";

/// `TaskState` transitioned to `Exception`.
pub const TASK_ABORTED: MessageDef = MessageDef {
    key: "TaskAborted",
    description: "A task has completed with errors.",
    message: "The task with Id '%1' has completed with errors.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "None.",
};

/// `TaskState` transitioned to `Cancelled` (explicit request).
pub const TASK_CANCELLED: MessageDef = MessageDef {
    key: "TaskCancelled",
    description: "A task was cancelled.",
    message: "Work on the task with Id '%1' was halted prior to completion due to an explicit request.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "None.",
};

/// `TaskState` transitioned to `Completed`.
pub const TASK_COMPLETED_OK: MessageDef = MessageDef {
    key: "TaskCompletedOK",
    description: "A task has completed.",
    message: "The task with Id '%1' has completed.",
    severity: "OK",
    param_types: &["string"],
    resolution: "None.",
};

/// `TaskState` transitioned to `Completed`, with warnings.
pub const TASK_COMPLETED_WARNING: MessageDef = MessageDef {
    key: "TaskCompletedWarning",
    description: "A task has completed with warnings.",
    message: "The task with Id '%1' has completed with warnings.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "None.",
};

/// `TaskState` transitioned to `Suspended` or `Interrupted`.
pub const TASK_PAUSED: MessageDef = MessageDef {
    key: "TaskPaused",
    description: "A task was paused.",
    message: "The task with Id '%1' was paused.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "None.",
};

/// `%2` is the percent completion of the task.
pub const TASK_PROGRESS_CHANGED: MessageDef = MessageDef {
    key: "TaskProgressChanged",
    description: "A task has changed progress.",
    message: "The task with Id '%1' has changed to progress %2 percent complete.",
    severity: "OK",
    param_types: &["string", "number"],
    resolution: "None.",
};

pub const TASK_REMOVED: MessageDef = MessageDef {
    key: "TaskRemoved",
    description: "A task was removed.",
    message: "The task with Id '%1' was removed.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "None.",
};

/// `TaskState` transitioned to `Running` from `Suspended` or `Interrupted`.
pub const TASK_RESUMED: MessageDef = MessageDef {
    key: "TaskResumed",
    description: "A task was resumed.",
    message: "The task with Id '%1' was resumed.",
    severity: "OK",
    param_types: &["string"],
    resolution: "None.",
};

/// `TaskState` transitions to `Starting` or `Running`.
pub const TASK_STARTED: MessageDef = MessageDef {
    key: "TaskStarted",
    description: "A task has started.",
    message: "The task with Id '%1' has started.",
    severity: "OK",
    param_types: &["string"],
    resolution: "None.",
};

/// Every message of the registry, sorted by key.
pub const ALL: &[MessageDef] = &[
    TASK_ABORTED,
    TASK_CANCELLED,
    TASK_COMPLETED_OK,
    TASK_COMPLETED_WARNING,
    TASK_PAUSED,
    TASK_PROGRESS_CHANGED,
    TASK_REMOVED,
    TASK_RESUMED,
    TASK_STARTED,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every named const of this module, with its Rust name.
    const NAMED: &[(&str, MessageDef)] = named![
        TASK_ABORTED,
        TASK_CANCELLED,
        TASK_COMPLETED_OK,
        TASK_COMPLETED_WARNING,
        TASK_PAUSED,
        TASK_PROGRESS_CHANGED,
        TASK_REMOVED,
        TASK_RESUMED,
        TASK_STARTED,
    ];

    #[test]
    fn registry_is_well_formed() {
        crate::registries::check_registry(ALL, NAMED);
    }

    #[test]
    fn first_argument_is_the_task_id() {
        for m in ALL {
            assert_eq!(m.param_types.first(), Some(&"string"), "{}", m.key);
            assert!(m.message.contains("Id '%1'"), "{}", m.key);
        }
    }

    #[test]
    fn registry_identity() {
        assert_eq!(PREFIX, "TaskEvent");
        assert_eq!(VERSION.split('.').count(), 3);
        assert_eq!(ALL.len(), 9);
        assert_eq!(TASK_STARTED.key, "TaskStarted");
        assert_eq!(TASK_STARTED.message, "The task with Id '%1' has started.");
        assert_eq!(TASK_PROGRESS_CHANGED.param_types, &["string", "number"]);
    }
}
