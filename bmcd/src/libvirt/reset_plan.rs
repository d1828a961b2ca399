//! Which libvirt operations carry out a Redfish `ResetType` from a given domain
//! state: a pure table, tested exhaustively.

use crate::model::{PowerState, ResetType};

/// A libvirt domain state (`virDomainState`), in our own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    NoState,
    Running,
    Blocked,
    Paused,
    ShuttingDown,
    ShutOff,
    Crashed,
    PmSuspended,
}

impl RunState {
    pub const ALL: [RunState; 8] = [
        RunState::NoState,
        RunState::Running,
        RunState::Blocked,
        RunState::Paused,
        RunState::ShuttingDown,
        RunState::ShutOff,
        RunState::Crashed,
        RunState::PmSuspended,
    ];

    /// The Redfish power state of a domain in this state.
    pub fn power_state(self) -> PowerState {
        match self {
            RunState::Running | RunState::Blocked => PowerState::On,
            RunState::Paused | RunState::PmSuspended => PowerState::Paused,
            RunState::ShuttingDown => PowerState::PoweringOff,
            RunState::NoState | RunState::ShutOff | RunState::Crashed => PowerState::Off,
        }
    }
}

/// One libvirt call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `virDomainCreate`: power on.
    Create,
    /// `virDomainDestroy`: pull the plug.
    Destroy,
    /// `virDomainShutdown`: ACPI power button.
    Shutdown,
    /// `virDomainReboot`: ask the guest to restart.
    Reboot,
    /// `virDomainReset`: reset line.
    Reset,
    /// `virDomainInjectNMI`.
    InjectNmi,
    /// `virDomainResume`: leave the paused state.
    Resume,
    /// `virDomainPMWakeup`: leave S3/S4.
    Wakeup,
}

/// The plan for one reset: the calls to make, in order. Empty means the system
/// is already where the reset would take it (idempotent success).
pub type Plan = &'static [Op];

/// Why a reset cannot be done from this state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

pub fn reset_plan(reset_type: ResetType, state: RunState) -> Result<Plan, Refusal> {
    use Op::*;
    use RunState::*;
    let off = matches!(state, NoState | ShutOff | Crashed);
    match reset_type {
        ResetType::On | ResetType::ForceOn => match state {
            _ if off => Ok(&[Create]),
            Running | Blocked => Ok(&[]),
            Paused => Ok(&[Resume]),
            PmSuspended => Ok(&[Wakeup]),
            _ => Err(Refusal("the system is shutting down; power it on once it is off")),
        },
        ResetType::ForceOff => {
            if off {
                Ok(&[])
            } else {
                Ok(&[Destroy])
            }
        }
        ResetType::GracefulShutdown => match state {
            _ if off => Ok(&[]),
            Running | Blocked => Ok(&[Shutdown]),
            ShuttingDown => Ok(&[]),
            _ => Err(Refusal(
                "a paused or suspended guest cannot answer a shutdown request",
            )),
        },
        ResetType::GracefulRestart => match state {
            Running | Blocked => Ok(&[Reboot]),
            _ if off => Err(Refusal("the system is off; power it on instead")),
            _ => Err(Refusal("the guest is not running and cannot restart itself")),
        },
        ResetType::ForceRestart => match state {
            Running | Blocked | ShuttingDown => Ok(&[Reset]),
            Paused => Ok(&[Reset, Resume]),
            // Like a reset button wired to power-on when the machine is off: the
            // client asked for a running, freshly started system.
            _ if off => Ok(&[Create]),
            _ => Err(Refusal("a suspended guest cannot be reset; power it on first")),
        },
        ResetType::Nmi => match state {
            Running | Blocked => Ok(&[InjectNmi]),
            _ => Err(Refusal("an NMI can only be sent to a running system")),
        },
        ResetType::PushPowerButton => match state {
            _ if off => Ok(&[Create]),
            Running | Blocked => Ok(&[Shutdown]),
            ShuttingDown => Ok(&[]),
            _ => Err(Refusal(
                "a paused or suspended guest does not see the power button",
            )),
        },
        ResetType::PowerCycle => {
            if off {
                Ok(&[Create])
            } else {
                Ok(&[Destroy, Create])
            }
        }
    }
}

/// When the stored definition boots differently from the running instance, a
/// restart must be cold (a new QEMU process reads the new boot order): a reset
/// becomes destroy + create, and a guest reboot becomes a shutdown after which
/// the caller starts the system again (`true`).
pub fn cold_restart(plan: Plan) -> (Plan, bool) {
    use Op::*;
    match plan {
        [Reset] | [Reset, Resume] => (&[Destroy, Create], false),
        [Reboot] => (&[Shutdown], true),
        other => (other, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a plan on a state machine: where does the domain end up?
    fn run(plan: Plan, mut state: RunState) -> RunState {
        for op in plan {
            state = match (op, state) {
                (Op::Create, RunState::NoState | RunState::ShutOff | RunState::Crashed) => RunState::Running,
                (Op::Destroy, _) => RunState::ShutOff,
                (Op::Shutdown, _) => RunState::ShuttingDown,
                (Op::Reboot | Op::Reset | Op::InjectNmi, s) => s,
                (Op::Resume, RunState::Paused) => RunState::Running,
                (Op::Wakeup, RunState::PmSuspended) => RunState::Running,
                (op, s) => panic!("{op:?} is invalid in state {s:?}"),
            };
        }
        state
    }

    #[test]
    fn every_reset_type_and_state_has_a_defined_outcome() {
        for rt in ResetType::ALL {
            for st in RunState::ALL {
                match reset_plan(rt, st) {
                    Ok(plan) => {
                        let end = run(plan, st);
                        match rt {
                            ResetType::On | ResetType::ForceOn | ResetType::PowerCycle => {
                                assert_eq!(end.power_state(), PowerState::On, "{rt} from {st:?}")
                            }
                            ResetType::ForceOff => {
                                assert_eq!(end.power_state(), PowerState::Off, "{rt} from {st:?}")
                            }
                            ResetType::GracefulShutdown => assert!(
                                matches!(end.power_state(), PowerState::Off | PowerState::PoweringOff),
                                "{rt} from {st:?}"
                            ),
                            _ => {}
                        }
                    }
                    Err(Refusal(reason)) => assert!(!reason.is_empty()),
                }
            }
        }
    }

    #[test]
    fn idempotent_requests_do_nothing() {
        assert_eq!(reset_plan(ResetType::On, RunState::Running), Ok(&[][..]));
        assert_eq!(reset_plan(ResetType::ForceOff, RunState::ShutOff), Ok(&[][..]));
        assert_eq!(
            reset_plan(ResetType::GracefulShutdown, RunState::ShutOff),
            Ok(&[][..])
        );
    }

    #[test]
    fn graceful_restart_and_nmi_of_an_off_system_are_refused() {
        for rt in [ResetType::GracefulRestart, ResetType::Nmi] {
            assert!(reset_plan(rt, RunState::ShutOff).is_err(), "{rt}");
        }
    }

    #[test]
    fn force_restart_of_an_off_system_powers_it_on() {
        let plan = reset_plan(ResetType::ForceRestart, RunState::ShutOff).expect("plan");
        assert_eq!(run(plan, RunState::ShutOff), RunState::Running);
    }

    #[test]
    fn pending_boot_changes_turn_restarts_cold() {
        assert_eq!(
            cold_restart(&[Op::Reset]),
            (&[Op::Destroy, Op::Create][..], false)
        );
        assert_eq!(cold_restart(&[Op::Reboot]), (&[Op::Shutdown][..], true));
        assert_eq!(cold_restart(&[Op::Create]), (&[Op::Create][..], false));
    }

    #[test]
    fn power_cycle_of_a_running_system_destroys_then_creates() {
        assert_eq!(
            reset_plan(ResetType::PowerCycle, RunState::Running),
            Ok(&[Op::Destroy, Op::Create][..])
        );
    }
}
