//! `netmonitor`: the thin entry point; everything is wired in the library's composition root.

fn main() -> std::process::ExitCode {
    netmonitor::main_with_args(std::env::args_os())
}
