//! The `wscgi` binary: options in, server out. Exit codes: 0 ok, 1 runtime failure, 2 bad options.

use std::process::ExitCode;

use wscgi::config::{self, Command};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match config::parse(&args, &|name| std::env::var(name).ok()) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help(text)) | Ok(Command::Version(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wscgi: {e}\nTry 'wscgi --help' for more information.");
            return ExitCode::from(2);
        }
    };
    wscgi::logger::init(config.log_level.to_level_filter(), config.log_json);
    let inherited = wscgi::systemd::listeners(&|name| std::env::var(name).ok());
    let result = wscgi::Server::with_listeners(config, inherited).and_then(|server| {
        let security = server.security();
        if let Err(e) = wscgi::signals::install(server.shutdown_handle(), move || security.reload())
        {
            log::warn!("signals not handled: {e}");
        }
        server.run()
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    }
}
