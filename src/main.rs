//! `netmonitor`: the thin entry point; everything is wired in the library's composition root.

/// The dissectors allocate and free many small strings per handshake; mimalloc handles that
/// churn far better than glibc's allocator (measured: about 40% of TLS replay time was malloc).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    netmonitor::main_with_args(std::env::args_os())
}
