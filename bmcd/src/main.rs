//! The `bmcd` binary: configuration, logging, signals; everything else is in the library.

use std::process::ExitCode;

use bmcd::config::{Command, Config, USAGE};
use bmcd::manager_reset::BmcResetAction;

fn init_logging(level: &str) {
    let level = match level {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers the process still stops on SIGTERM's default action.
            std::future::pending::<()>().await;
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::from_args(&args, &|k| std::env::var(k).ok()) {
        Ok(Command::Run(c)) => *c,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Admin(cmd)) => {
            return match bmcd::admin::run(&cmd) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bmcd: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Ok(Command::Version) => {
            println!("bmcd {}", bmcd::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bmcd: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bmcd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reset_action = config.manager_reset;
    let reset = runtime.block_on(async move {
        let running = match bmcd::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("bmcd: {e}");
                return Err(ExitCode::FAILURE);
            }
        };
        if let Some(pw) = &running.generated_admin_password {
            println!(
                "bmcd: created account '{}' with password '{}' (shown only once; change it via AccountService)",
                running.admin_user, pw
            );
        }
        println!("bmcd ready on https://{}", running.https);
        if let Some(r) = running.http_redirect {
            println!("bmcd redirecting http://{r} to HTTPS");
        }
        let reset = tokio::select! {
            _ = wait_for_signal() => None,
            t = running.manager_reset_requested() => Some(t),
        };
        tracing::info!(reset = reset.map(|t| t.as_str()), "shutting down");
        running.stop().await;
        Ok(reset)
    });
    drop(runtime);
    match reset {
        Err(code) => code,
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(_)) => manager_reset(reset_action),
    }
}

/// The BMC's own reset, after the service stopped: run bmcd again in this
/// process, or reboot the machine (the firmware image; a pending firmware bank
/// is tried then).
fn manager_reset(action: BmcResetAction) -> ExitCode {
    use nix::sys::signal::{self, SigHandler, Signal};
    use std::os::unix::process::CommandExt;
    if action == BmcResetAction::Reboot {
        // The init system's own reboot first (it stops everything cleanly and
        // ends this process too); the system call if that is not possible.
        println!("bmcd rebooting the machine (Manager.Reset)");
        // The runtime's signal handlers outlive it: put SIGTERM back to its
        // default, so that the shutdown's SIGTERM ends this process at once.
        for sig in [Signal::SIGTERM, Signal::SIGINT] {
            // SAFETY: SIG_DFL installs no handler code; no other thread of
            // bmcd handles signals any more (the runtime has been dropped).
            let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
        }
        match std::process::Command::new("reboot").status() {
            Ok(status) if status.success() => std::thread::sleep(std::time::Duration::from_secs(120)),
            other => eprintln!("bmcd: 'reboot' did not start ({other:?}); rebooting directly"),
        }
        nix::unistd::sync();
        match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT) {
            Ok(never) => match never {},
            Err(e) => eprintln!("bmcd: cannot reboot ({e}); restarting bmcd instead"),
        }
    }
    println!("bmcd restarting (Manager.Reset)");
    let err = std::process::Command::new("/proc/self/exe")
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!("bmcd: cannot restart itself: {err}");
    ExitCode::FAILURE
}
