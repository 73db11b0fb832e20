//! SIGINT, SIGTERM and SIGHUP ask the run to stop after the batch in flight; a second one ends
//! the process at once (outputs are renamed into place whole, so even then none is half-written).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// The first stop signal received, if any.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicI32>);

impl Stop {
    /// Starts listening for the stop signals.
    pub fn install() -> Self {
        let stop = Self::default();
        listen(stop.0.clone());
        stop
    }

    /// The signal number that asked to stop, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.signal().is_some()
    }
}

#[cfg(unix)]
fn listen(flag: Arc<AtomicI32>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if flag.swap(sig, Ordering::SeqCst) != 0 {
                // SAFETY: `_exit` ends the process at once without running atexit handlers,
                // which GPU drivers may not expect from a thread while others use the device.
                unsafe { libc::_exit(128 + sig) };
            }
        }
    });
}

#[cfg(not(unix))]
fn listen(flag: Arc<AtomicI32>) {
    const SIGINT: i32 = 2;
    let _ = ctrlc::set_handler(move || {
        if flag.swap(SIGINT, Ordering::SeqCst) != 0 {
            std::process::exit(128 + SIGINT);
        }
    });
}
