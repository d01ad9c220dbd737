//! `storyreel`: see [`storyreel_gateway::cli`].

fn main() -> std::process::ExitCode {
    storyreel_gateway::cli::main()
}
