//! The `console-proxy` binary: flags, logging, signals; the rest is in the library.

use std::process::ExitCode;

use console_proxy::config::{Command, Config, USAGE};

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
        _ => std::future::pending::<()>().await,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::from_args(&args) {
        Ok(Command::Run(c)) => *c,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("console-proxy {}", console_proxy::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("console-proxy: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.log);
    if let Err(e) = console_proxy::start_libvirt_event_loop() {
        eprintln!("console-proxy: libvirt event loop: {e} (serial consoles will not work)");
    }
    // One thread: a console proxy moves bytes; it does not compute.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("console-proxy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let running = match console_proxy::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("console-proxy: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("console-proxy ready on {}", running.addr);
        if let Some(ssh) = running.ssh_addr {
            println!("console-proxy SSH serial console on {ssh}");
        }
        wait_for_signal().await;
        running.stop().await;
        ExitCode::SUCCESS
    })
}
