//! Who is calling: accounts, sessions, Basic and token authentication, lockout.
//!
//! Accounts and sessions live in the store (the truth) and in memory (for the
//! per-request lookup). Every change is written to the store first, then to
//! memory, so an acknowledged change survives a crash. Session last-use times
//! are written behind, in batches.

pub mod password;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ring::digest;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::RedfishError;
use crate::privilege::{PrivilegeSet, Role};
use crate::store::{AccountRecord, SessionRecord, Store, StoreError};
use crate::time::now_unix;

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: i64,
    pub user_name: String,
    pub role: Role,
    /// The session the request came in on, when it used a token.
    pub session_id: Option<String>,
    /// The account must change its password before doing anything else.
    pub password_change_required: bool,
    /// The project (tenant) the caller belongs to; `None`: the whole service.
    pub project: Option<String>,
}

impl Principal {
    /// The role's privileges. A project member's role counts within its
    /// project only (which routes it reaches is [`crate::tenancy`]'s part):
    /// never `ConfigureUsers` (accounts are the whole service's), and
    /// `ConfigureManager` only on its own systems' managers
    /// ([`Principal::privileges_on_own_system`]), never on the appliance's.
    pub fn privileges(&self) -> PrivilegeSet {
        let all = self.role.privileges();
        if self.project.is_some() {
            all.without(crate::privilege::Privilege::ConfigureUsers)
                .without(crate::privilege::Privilege::ConfigureManager)
        } else {
            all
        }
    }

    /// The privileges on a system of the caller's own project (or any system,
    /// for a member of no project).
    pub fn privileges_on_own_system(&self) -> PrivilegeSet {
        self.role
            .privileges()
            .without(crate::privilege::Privilege::ConfigureUsers)
            .union(self.privileges())
    }
}

/// AccountService and SessionService settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    pub session_timeout_s: i64,
    pub lockout_threshold: u32,
    pub lockout_duration_s: i64,
    pub lockout_counter_reset_after_s: i64,
    pub min_password_length: usize,
    pub max_password_length: usize,
    pub max_sessions: usize,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            session_timeout_s: 1800,
            lockout_threshold: 5,
            lockout_duration_s: 60,
            lockout_counter_reset_after_s: 60,
            min_password_length: 8,
            max_password_length: 64,
            max_sessions: 64,
        }
    }
}

/// Limits on the writable policy values (also shown as schema annotations).
pub const SESSION_TIMEOUT_RANGE: (i64, i64) = (30, 86_400);
pub const MAX_USER_NAME_LENGTH: usize = 32;

/// A new account's fields.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub user_name: String,
    pub password: String,
    pub role: Role,
    pub enabled: bool,
    /// The project it belongs to; `None`: the whole service.
    pub project: Option<String>,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    pub user_name: Option<String>,
    pub password: Option<String>,
    pub role: Option<Role>,
    pub enabled: Option<bool>,
    /// Only `Some(false)` (unlock) is accepted.
    pub locked: Option<bool>,
    pub password_change_required: Option<bool>,
    /// `Some(None)`: no project any more.
    pub project: Option<Option<String>>,
}

/// Why an account change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountError {
    NotFound,
    UserNameTaken(String),
    BadUserName(String),
    BadPassword(String),
    LastAdministrator,
    LockOnlyByService,
    Store(StoreError),
    Internal,
}

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountError::NotFound => f.write_str("no such account"),
            AccountError::UserNameTaken(n) => write!(f, "user name '{n}' is taken"),
            AccountError::BadUserName(n) => write!(
                f,
                "user name '{n}' is not valid (1 to 32 letters, digits, '.', '_' or '-')"
            ),
            AccountError::BadPassword(why) => write!(f, "password refused: {why}"),
            AccountError::LastAdministrator => f.write_str("at least one enabled Administrator must remain"),
            AccountError::LockOnlyByService => f.write_str("only the service locks accounts"),
            AccountError::Store(e) => write!(f, "{e}"),
            AccountError::Internal => f.write_str("internal error"),
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Store(e)
    }
}

impl From<AccountError> for RedfishError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound => RedfishError::not_found("ManagerAccount", ""),
            AccountError::UserNameTaken(name) => {
                RedfishError::already_exists("ManagerAccount", "UserName", &name)
            }
            AccountError::BadUserName(name) => RedfishError::property_value_incorrect(
                "UserName",
                &name,
                "Use 1 to 32 characters: letters, digits, '.', '_' or '-', not starting with '-' or '.'.",
            ),
            AccountError::BadPassword(why) => {
                RedfishError::property_value_incorrect("Password", "(hidden)", &why)
            }
            AccountError::LastAdministrator => RedfishError::cannot_delete(
                "At least one enabled Administrator account must remain.",
            ),
            AccountError::LockOnlyByService => RedfishError::property_value_incorrect(
                "Locked",
                "true",
                "Only the service locks accounts (after repeated failed logins); set Locked to false to unlock.",
            ),
            AccountError::Store(s) => s.into(),
            AccountError::Internal => RedfishError::internal(),
        }
    }
}

/// A well-formed hash no password matches, verified for unknown users.
const DUMMY_HASH: &str =
    "$pbkdf2-sha256$i=100000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

enum LoginLookup {
    Unknown,
    Refused,
    Cached(AccountRecord),
    Verify(AccountRecord),
}

struct AuthState {
    policy: AuthPolicy,
    accounts: Vec<AccountRecord>,
    sessions: HashMap<[u8; 32], SessionRecord>,
    /// Session id -> last use, not yet written to the store.
    unsaved_uses: HashMap<String, i64>,
    /// HMAC(user, password) -> the password hash it was verified against.
    basic_cache: HashMap<[u8; 32], (i64, String)>,
}

pub struct Authority {
    store: Store,
    rng: SystemRandom,
    cache_key: hmac::Key,
    state: Mutex<AuthState>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_locked(a: &AccountRecord, now: i64) -> bool {
    a.locked_until > now
}

/// The endpoint an account belongs to (`USER@ENDPOINT`), or `None` for the
/// BMC's own accounts.
pub fn endpoint_of(user_name: &str) -> Option<&str> {
    user_name.split_once('@').map(|(_, ep)| ep)
}

fn role_of(a: &AccountRecord) -> Role {
    Role::parse(&a.role_id).unwrap_or(Role::ReadOnly)
}

fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USER_NAME_LENGTH
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Authority {
    /// Loads accounts, sessions and policy from the store.
    pub async fn load(store: Store) -> Result<Arc<Authority>, StoreError> {
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        rng.fill(&mut key)
            .map_err(|_| StoreError::Io("no system randomness".into()))?;
        let mut policy = AuthPolicy::default();
        let read = |v: Option<String>, d: i64| v.and_then(|s| s.parse::<i64>().ok()).unwrap_or(d);
        policy.session_timeout_s = read(store.setting("session_timeout").await?, policy.session_timeout_s);
        policy.lockout_threshold = read(
            store.setting("lockout_threshold").await?,
            policy.lockout_threshold.into(),
        ) as u32;
        policy.lockout_duration_s = read(
            store.setting("lockout_duration").await?,
            policy.lockout_duration_s,
        );
        policy.lockout_counter_reset_after_s = read(
            store.setting("lockout_counter_reset_after").await?,
            policy.lockout_counter_reset_after_s,
        );
        policy.min_password_length = read(
            store.setting("min_password_length").await?,
            policy.min_password_length as i64,
        ) as usize;
        policy.max_password_length = read(
            store.setting("max_password_length").await?,
            policy.max_password_length as i64,
        ) as usize;
        let accounts = store.accounts().await?;
        let now = now_unix();
        let mut sessions = HashMap::new();
        let mut expired = Vec::new();
        for s in store.sessions().await? {
            if now - s.last_used > policy.session_timeout_s {
                expired.push(s.id);
            } else {
                sessions.insert(s.token_hash, s);
            }
        }
        if !expired.is_empty() {
            store.delete_sessions(expired).await?;
        }
        Ok(Arc::new(Authority {
            store,
            rng,
            cache_key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            state: Mutex::new(AuthState {
                policy,
                accounts,
                sessions,
                unsaved_uses: HashMap::new(),
                basic_cache: HashMap::new(),
            }),
        }))
    }

    fn state(&self) -> MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn policy(&self) -> AuthPolicy {
        self.state().policy
    }

    /// Sets how many sessions may be open at a time (`max-sessions`).
    pub fn limit_sessions(&self, max_sessions: usize) {
        self.state().policy.max_sessions = max_sessions;
    }

    /// Stores and applies new policy values.
    pub async fn set_policy(&self, policy: AuthPolicy) -> Result<(), StoreError> {
        let settings: [(&'static str, i64); 6] = [
            ("session_timeout", policy.session_timeout_s),
            ("lockout_threshold", policy.lockout_threshold.into()),
            ("lockout_duration", policy.lockout_duration_s),
            (
                "lockout_counter_reset_after",
                policy.lockout_counter_reset_after_s,
            ),
            ("min_password_length", policy.min_password_length as i64),
            ("max_password_length", policy.max_password_length as i64),
        ];
        for (k, v) in settings {
            self.store.set_setting(k, v.to_string()).await?;
        }
        self.state().policy = policy;
        Ok(())
    }

    /// On first start (no accounts), creates the Administrator account. Returns
    /// the password when it was generated, for the caller to print once.
    pub async fn ensure_admin(
        &self,
        user_name: &str,
        password: Option<&str>,
    ) -> Result<Option<String>, AccountError> {
        if !self.state().accounts.is_empty() {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p.to_owned(), false),
            None => (
                password::generate(&self.rng, 20).map_err(|_| AccountError::Internal)?,
                true,
            ),
        };
        self.create_account(NewAccount {
            user_name: user_name.to_owned(),
            password: password.clone(),
            role: Role::Administrator,
            enabled: true,
            project: None,
        })
        .await?;
        Ok(generated.then_some(password))
    }

    // ---- authentication -------------------------------------------------

    /// Authenticates an `X-Auth-Token`.
    pub fn authenticate_token(&self, token: &str) -> Result<Principal, RedfishError> {
        let hash = sha256(token.as_bytes());
        let now = now_unix();
        let mut st = self.state();
        let timeout = st.policy.session_timeout_s;
        let Some(session) = st.sessions.get_mut(&hash) else {
            return Err(RedfishError::unauthorized());
        };
        if now - session.last_used > timeout {
            return Err(RedfishError::unauthorized());
        }
        session.last_used = now;
        let (sid, account_id) = (session.id.clone(), session.account_id);
        st.unsaved_uses.insert(sid.clone(), now);
        let Some(account) = st.accounts.iter().find(|a| a.id == account_id) else {
            return Err(RedfishError::unauthorized());
        };
        if !account.enabled || is_locked(account, now) {
            return Err(RedfishError::unauthorized());
        }
        Ok(Principal {
            account_id,
            user_name: account.user_name.clone(),
            role: role_of(account),
            session_id: Some(sid),
            password_change_required: account.password_change_required,
            project: account.project.clone(),
        })
    }

    /// Checks a user name and password (HTTP Basic or a session login), with
    /// lockout. Password hashing runs on a blocking thread.
    pub async fn authenticate_password(&self, user: &str, pass: &str) -> Result<Principal, RedfishError> {
        let now = now_unix();
        let cache_key = {
            let mut msg = Vec::with_capacity(user.len() + pass.len() + 1);
            msg.extend_from_slice(user.as_bytes());
            msg.push(0);
            msg.extend_from_slice(pass.as_bytes());
            let tag = hmac::sign(&self.cache_key, &msg);
            let mut k = [0u8; 32];
            k.copy_from_slice(tag.as_ref());
            k
        };
        let known = self.lookup_for_login(user, &cache_key, now);
        let account = match known {
            LoginLookup::Unknown => {
                // Spend the same effort as a real check so timing does not reveal
                // which user names exist.
                let pass = pass.to_owned();
                let _ = tokio::task::spawn_blocking(move || password::verify(&pass, DUMMY_HASH)).await;
                return Err(RedfishError::login_failed());
            }
            LoginLookup::Refused => return Err(RedfishError::login_failed()),
            LoginLookup::Cached(account) => return Ok(self.principal_after_success(&account)),
            LoginLookup::Verify(account) => account,
        };
        let stored = account.password_hash.clone();
        let candidate = pass.to_owned();
        let ok = tokio::task::spawn_blocking(move || password::verify(&candidate, &stored))
            .await
            .unwrap_or(false);
        if ok {
            let reset_counter = account.failed_logins > 0;
            {
                let mut st = self.state();
                st.basic_cache
                    .insert(cache_key, (account.id, account.password_hash.clone()));
            }
            if reset_counter {
                let mut updated = account.clone();
                updated.failed_logins = 0;
                self.save_account(updated).await?;
            }
            Ok(self.principal_after_success(&account))
        } else {
            self.record_failure(account.id, now).await?;
            Err(RedfishError::login_failed())
        }
    }

    fn lookup_for_login(&self, user: &str, cache_key: &[u8; 32], now: i64) -> LoginLookup {
        let st = self.state();
        let Some(account) = st.accounts.iter().find(|a| a.user_name == user) else {
            return LoginLookup::Unknown;
        };
        if is_locked(account, now) || !account.enabled {
            return LoginLookup::Refused;
        }
        match st.basic_cache.get(cache_key) {
            Some((id, hash)) if *id == account.id && *hash == account.password_hash => {
                LoginLookup::Cached(account.clone())
            }
            _ => LoginLookup::Verify(account.clone()),
        }
    }

    fn principal_after_success(&self, account: &AccountRecord) -> Principal {
        Principal {
            account_id: account.id,
            user_name: account.user_name.clone(),
            role: role_of(account),
            session_id: None,
            password_change_required: account.password_change_required,
            project: account.project.clone(),
        }
    }

    async fn record_failure(&self, account_id: i64, now: i64) -> Result<(), StoreError> {
        let updated = {
            let st = self.state();
            let policy = st.policy;
            let Some(mut a) = st.accounts.iter().find(|a| a.id == account_id).cloned() else {
                return Ok(());
            };
            if now - a.last_failure > policy.lockout_counter_reset_after_s {
                a.failed_logins = 0;
            }
            a.failed_logins += 1;
            a.last_failure = now;
            if policy.lockout_threshold > 0 && a.failed_logins >= policy.lockout_threshold {
                a.locked_until = if policy.lockout_duration_s == 0 {
                    i64::MAX
                } else {
                    now + policy.lockout_duration_s
                };
                a.failed_logins = 0;
                tracing::warn!(user = %a.user_name, "account locked after repeated failed logins");
            }
            a
        };
        self.save_account(updated).await
    }

    async fn save_account(&self, account: AccountRecord) -> Result<(), StoreError> {
        self.store.update_account(account.clone()).await?;
        let mut st = self.state();
        if let Some(slot) = st.accounts.iter_mut().find(|a| a.id == account.id) {
            *slot = account;
        }
        Ok(())
    }

    // ---- sessions -------------------------------------------------------

    /// Creates a session for an authenticated principal; returns the session and
    /// its token (shown to the client once, stored only as a hash).
    pub async fn create_session(
        &self,
        who: &Principal,
        client_address: String,
    ) -> Result<(SessionRecord, String), RedfishError> {
        let limit = self.policy().max_sessions;
        let open_sessions = || self.state().sessions.len();
        if open_sessions() >= limit {
            self.expire_sessions().await?;
            if open_sessions() >= limit {
                return Err(RedfishError::session_limit());
            }
        }
        let mut token = [0u8; 32];
        let mut id = [0u8; 10];
        self.rng.fill(&mut token).map_err(|_| RedfishError::internal())?;
        self.rng.fill(&mut id).map_err(|_| RedfishError::internal())?;
        let token = hex(&token);
        let now = now_unix();
        let session = SessionRecord {
            id: hex(&id),
            token_hash: sha256(token.as_bytes()),
            account_id: who.account_id,
            created: now,
            last_used: now,
            client_address,
        };
        self.store.insert_session(session.clone()).await?;
        self.state().sessions.insert(session.token_hash, session.clone());
        Ok((session, token))
    }

    pub fn sessions(&self) -> Vec<SessionRecord> {
        let mut v: Vec<_> = self.state().sessions.values().cloned().collect();
        v.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        v
    }

    pub fn session(&self, id: &str) -> Option<SessionRecord> {
        self.state().sessions.values().find(|s| s.id == id).cloned()
    }

    pub async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        if self.session(id).is_none() {
            return Ok(false);
        }
        self.store.delete_sessions(vec![id.to_owned()]).await?;
        let mut st = self.state();
        st.sessions.retain(|_, s| s.id != id);
        st.unsaved_uses.remove(id);
        Ok(true)
    }

    /// Drops timed-out sessions and writes pending last-use times.
    pub async fn expire_sessions(&self) -> Result<(), StoreError> {
        let now = now_unix();
        let (expired, uses) = {
            let mut st = self.state();
            let timeout = st.policy.session_timeout_s;
            let expired: Vec<String> = st
                .sessions
                .values()
                .filter(|s| now - s.last_used > timeout)
                .map(|s| s.id.clone())
                .collect();
            st.sessions.retain(|_, s| now - s.last_used <= timeout);
            for id in &expired {
                st.unsaved_uses.remove(id);
            }
            let uses: Vec<(String, i64)> = st.unsaved_uses.drain().collect();
            (expired, uses)
        };
        if !expired.is_empty() {
            self.store.delete_sessions(expired).await?;
        }
        if !uses.is_empty() {
            self.store.touch_sessions(uses).await?;
        }
        Ok(())
    }

    // ---- accounts -------------------------------------------------------

    pub fn accounts(&self) -> Vec<AccountRecord> {
        self.state().accounts.clone()
    }

    pub fn account(&self, id: i64) -> Option<AccountRecord> {
        self.state().accounts.iter().find(|a| a.id == id).cloned()
    }

    pub fn is_locked(&self, a: &AccountRecord) -> bool {
        is_locked(a, now_unix())
    }

    fn check_password(&self, password: &str) -> Result<(), AccountError> {
        let p = self.policy();
        let n = password.chars().count();
        if n < p.min_password_length || n > p.max_password_length {
            return Err(AccountError::BadPassword(format!(
                "The password must have {} to {} characters.",
                p.min_password_length, p.max_password_length
            )));
        }
        Ok(())
    }

    async fn hash_password(&self, password: String) -> Result<String, AccountError> {
        let rng = self.rng.clone();
        tokio::task::spawn_blocking(move || password::hash(&password, &rng))
            .await
            .map_err(|_| AccountError::Internal)?
            .map_err(|_| AccountError::Internal)
    }

    pub async fn create_account(&self, new: NewAccount) -> Result<AccountRecord, AccountError> {
        if !valid_user_name(&new.user_name) {
            return Err(AccountError::BadUserName(new.user_name));
        }
        self.check_password(&new.password)?;
        let taken = new.user_name.clone();
        self.insert_account(
            new.user_name,
            new.password,
            new.role,
            new.enabled,
            taken,
            new.project,
        )
        .await
    }

    /// Stores a new account under `user_name` (checked before); `shown` is
    /// the name a taken-name error reports.
    async fn insert_account(
        &self,
        user_name: String,
        password: String,
        role: Role,
        enabled: bool,
        shown: String,
        project: Option<String>,
    ) -> Result<AccountRecord, AccountError> {
        if self.state().accounts.iter().any(|a| a.user_name == user_name) {
            return Err(AccountError::UserNameTaken(shown));
        }
        let hash = self.hash_password(password).await?;
        let record = AccountRecord {
            id: 0,
            user_name,
            password_hash: hash,
            role_id: role.id().to_owned(),
            enabled,
            failed_logins: 0,
            last_failure: 0,
            locked_until: 0,
            password_change_required: false,
            project,
        };
        let record = match self.store.insert_account(record).await {
            Ok(r) => r,
            Err(StoreError::Conflict(_)) => return Err(AccountError::UserNameTaken(shown)),
            Err(e) => return Err(e.into()),
        };
        self.state().accounts.push(record.clone());
        Ok(record)
    }

    fn would_leave_no_admin(&self, id: i64, after: Option<&AccountRecord>) -> bool {
        let st = self.state();
        !st.accounts.iter().any(|a| {
            let a = if a.id == id {
                match after {
                    Some(new) => new,
                    None => return false,
                }
            } else {
                a
            };
            // A project's Administrator does not administer the service.
            a.enabled && role_of(a) == Role::Administrator && a.project.is_none()
        })
    }

    /// Applies changes to an account. A new password or a disabled account ends
    /// the account's sessions, except `keep` (the session making the change).
    pub async fn update_account(
        &self,
        id: i64,
        changes: AccountChanges,
        keep: Option<&str>,
    ) -> Result<AccountRecord, AccountError> {
        let mut a = self.account(id).ok_or(AccountError::NotFound)?;
        let ends_sessions = changes.password.is_some() || changes.enabled == Some(false);
        if let Some(name) = changes.user_name {
            if name != a.user_name {
                if !valid_user_name(&name) {
                    return Err(AccountError::BadUserName(name));
                }
                if self.state().accounts.iter().any(|o| o.user_name == name) {
                    return Err(AccountError::UserNameTaken(name));
                }
                a.user_name = name;
            }
        }
        if let Some(role) = changes.role {
            a.role_id = role.id().to_owned();
        }
        if let Some(enabled) = changes.enabled {
            a.enabled = enabled;
        }
        match changes.locked {
            Some(true) => return Err(AccountError::LockOnlyByService),
            Some(false) => {
                a.locked_until = 0;
                a.failed_logins = 0;
            }
            None => {}
        }
        if let Some(required) = changes.password_change_required {
            a.password_change_required = required;
        }
        if let Some(project) = changes.project {
            a.project = project;
        }
        if let Some(pw) = changes.password {
            self.check_password(&pw)?;
            a.password_hash = self.hash_password(pw).await?;
            a.password_change_required = false;
        }
        if self.would_leave_no_admin(id, Some(&a)) {
            return Err(AccountError::LastAdministrator);
        }
        match self.store.update_account(a.clone()).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(AccountError::UserNameTaken(a.user_name)),
            Err(e) => return Err(e.into()),
        }
        {
            let mut st = self.state();
            if let Some(slot) = st.accounts.iter_mut().find(|o| o.id == id) {
                *slot = a.clone();
            }
        }
        // Cached Basic verifications name the old hash and lapse by themselves;
        // a role is read fresh on every request.
        if ends_sessions {
            let ended: Vec<String> = self
                .state()
                .sessions
                .values()
                .filter(|s| s.account_id == id && Some(s.id.as_str()) != keep)
                .map(|s| s.id.clone())
                .collect();
            if !ended.is_empty() {
                self.store.delete_sessions(ended.clone()).await?;
                let mut st = self.state();
                st.sessions.retain(|_, s| !ended.contains(&s.id));
                tracing::info!(user = %a.user_name, sessions = ended.len(), "sessions ended by an account change");
            }
        }
        Ok(a)
    }

    /// Creates the own account of a per-VM BMC endpoint. It is stored as
    /// `USER@ENDPOINT` (`@` cannot occur in other account names), logs in as
    /// `USER` on that endpoint only, and goes away with the endpoint.
    pub async fn create_endpoint_account(
        &self,
        endpoint: &str,
        user: &str,
        password: String,
        role: Role,
    ) -> Result<AccountRecord, AccountError> {
        if !valid_user_name(user) || !valid_user_name(endpoint) {
            return Err(AccountError::BadUserName(user.to_owned()));
        }
        self.check_password(&password)?;
        self.insert_account(
            format!("{user}@{endpoint}"),
            password,
            role,
            true,
            user.to_owned(),
            None,
        )
        .await
    }

    /// Removes the accounts (and so the sessions) of an endpoint.
    pub async fn delete_endpoint_accounts(&self, endpoint: &str) -> Result<(), AccountError> {
        let ids: Vec<i64> = self
            .state()
            .accounts
            .iter()
            .filter(|a| endpoint_of(&a.user_name) == Some(endpoint))
            .map(|a| a.id)
            .collect();
        for id in ids {
            self.store.delete_account(id).await?;
            let mut st = self.state();
            st.accounts.retain(|a| a.id != id);
            st.sessions.retain(|_, s| s.account_id != id);
            st.basic_cache.retain(|_, (aid, _)| *aid != id);
        }
        Ok(())
    }

    /// Like [`Authority::authenticate_password`], on the listener of
    /// `endpoint`: the endpoint's own account first, then the BMC's accounts.
    pub async fn authenticate_password_at(
        &self,
        endpoint: Option<&str>,
        user: &str,
        pass: &str,
    ) -> Result<Principal, RedfishError> {
        if let Some(ep) = endpoint {
            let scoped = format!("{user}@{ep}");
            let exists = self.state().accounts.iter().any(|a| a.user_name == scoped);
            if exists {
                return self.authenticate_password(&scoped, pass).await;
            }
        } else if user.contains('@') {
            return Err(RedfishError::login_failed());
        }
        self.authenticate_password(user, pass).await
    }

    /// The account a verified client certificate names (its subject's common
    /// name is the user name), on the listener of `endpoint` like
    /// [`Authority::authenticate_password_at`]. A disabled or locked account
    /// is refused.
    pub fn authenticate_certificate_at(
        &self,
        endpoint: Option<&str>,
        user: &str,
    ) -> Result<Principal, RedfishError> {
        if endpoint.is_none() && user.contains('@') {
            return Err(RedfishError::login_failed());
        }
        let now = now_unix();
        let st = self.state();
        let scoped = endpoint.map(|ep| format!("{user}@{ep}"));
        let account = scoped
            .and_then(|name| st.accounts.iter().find(|a| a.user_name == name))
            .or_else(|| st.accounts.iter().find(|a| a.user_name == user))
            .ok_or_else(RedfishError::login_failed)?;
        if !account.enabled || is_locked(account, now) {
            return Err(RedfishError::login_failed());
        }
        Ok(self.principal_after_success(account))
    }

    pub async fn delete_account(&self, id: i64) -> Result<(), AccountError> {
        if self.account(id).is_none() {
            return Err(AccountError::NotFound);
        }
        if self.would_leave_no_admin(id, None) {
            return Err(AccountError::LastAdministrator);
        }
        self.store.delete_account(id).await?;
        let mut st = self.state();
        st.accounts.retain(|a| a.id != id);
        st.sessions.retain(|_, s| s.account_id != id);
        st.basic_cache.retain(|_, (aid, _)| *aid != id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_checked() {
        assert!(valid_user_name("admin"));
        assert!(valid_user_name("ops_team-1.a"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name("-x"));
        assert!(!valid_user_name("a b"));
        assert!(!valid_user_name("é"));
        assert!(!valid_user_name(&"a".repeat(33)));
    }

    #[tokio::test]
    async fn lockout_after_threshold_then_unlock() {
        let dir = std::env::temp_dir().join(format!("bmcd-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let store = Store::open(&dir.join("s.db")).expect("store");
        let auth = Authority::load(store).await.expect("load");
        let generated = auth
            .ensure_admin("admin", Some("secret-pass"))
            .await
            .expect("admin");
        assert_eq!(generated, None);
        assert!(auth.authenticate_password("admin", "secret-pass").await.is_ok());
        for _ in 0..5 {
            assert!(auth.authenticate_password("admin", "wrong").await.is_err());
        }
        // Locked now, even with the right password.
        assert!(auth.authenticate_password("admin", "secret-pass").await.is_err());
        let id = auth.accounts()[0].id;
        assert!(auth.is_locked(&auth.accounts()[0]));
        auth.update_account(
            id,
            AccountChanges {
                locked: Some(false),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("unlock");
        assert!(auth.authenticate_password("admin", "secret-pass").await.is_ok());
        // The last administrator cannot go.
        assert_eq!(
            auth.delete_account(id).await,
            Err(AccountError::LastAdministrator)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
