//! `lambda-local`: serve Lambda functions locally with real Lambda semantics.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use lambda_local::{Cli, Server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let server = match cli.into_config() {
        Ok(config) => Server::start(config).await,
        Err(error) => Err(error.into()),
    };
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let mut lines = server.endpoint();
    if let Some(http) = server.http_endpoint() {
        lines.push('\n');
        lines.push_str(&http);
    }
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{lines}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        tracing::warn!("could not print the endpoints to stdout");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on SIGINT or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
