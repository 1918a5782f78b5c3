//! SIGINT and SIGTERM for the commands that run builds in the sandbox (`verify`, `check`).
//!
//! The first signal sets the [`CancelToken`]: a running build is killed and
//! cleaned up, and the pipeline stops at its next step. Not everything the
//! command waits for looks at the token (a read from a stalled server, a
//! clone), so a watchdog ends the process [`GRACE`] after the signal — unless
//! a sandbox build is being stopped, whose clean-up (the kill, `runc delete`,
//! the bundle) gets up to [`SANDBOX_CLEANUP`] more, so that no container is
//! left behind. A second signal ends the process at once. Either way the exit
//! code is 3 (infrastructure: the verifier did not finish), with a line on
//! stderr saying so.

use std::io::Read as _;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rebuild::{Progress, Step};
use sandbox::CancelToken;

use crate::exit::{Failure, INFRASTRUCTURE_ERROR};

/// How long after a signal the process may still run when no build is being stopped.
const GRACE: Duration = Duration::from_secs(1);
/// How much longer a build being stopped gets to be cleaned up.
const SANDBOX_CLEANUP: Duration = Duration::from_secs(15);

const SIGNALS: [i32; 2] = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];

/// The installed handlers: the token the pipeline watches, and whether a
/// sandbox build is running (from the pipeline's progress).
pub(crate) struct Interrupts {
    cancel: CancelToken,
    building: Arc<AtomicBool>,
}

impl Interrupts {
    /// Installs the handlers and starts the watchdog.
    pub(crate) fn install() -> Result<Interrupts, Failure> {
        let cancel = CancelToken::new();
        let building = Arc::new(AtomicBool::new(false));
        let installing = |sig: i32, e: std::io::Error| {
            Failure::infrastructure(anyhow!("installing the handler for signal {sig}: {e}"))
        };
        let (mut reader, writer) = UnixStream::pair().map_err(|e| installing(0, e))?;
        for sig in SIGNALS {
            // Registered first, so it sees the flag as the previous signal left it:
            // a second signal exits at once.
            signal_hook::flag::register_conditional_shutdown(sig, i32::from(INFRASTRUCTURE_ERROR), cancel.flag())
                .map_err(|e| installing(sig, e))?;
            signal_hook::flag::register(sig, cancel.flag()).map_err(|e| installing(sig, e))?;
            let w = writer.try_clone().map_err(|e| installing(sig, e))?;
            signal_hook::low_level::pipe::register(sig, w).map_err(|e| installing(sig, e))?;
        }
        let watched = Arc::clone(&building);
        std::thread::Builder::new()
            .name("reprove-interrupt".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                if reader.read(&mut byte).is_ok_and(|n| n > 0) {
                    watchdog(&watched);
                }
            })
            .map_err(|e| installing(0, e))?;
        Ok(Interrupts { cancel, building })
    }

    /// The token that stops the sandbox.
    pub(crate) fn cancel(&self) -> &CancelToken {
        &self.cancel
    }

    /// `inner`, also telling the watchdog when a build is running.
    pub(crate) fn track(&self, inner: Arc<dyn Progress>) -> Arc<dyn Progress> {
        Arc::new(Tracked { inner, building: Arc::clone(&self.building) })
    }
}

/// Runs after the first signal: ends the process unless the command ends first.
fn watchdog(building: &AtomicBool) {
    let signalled = Instant::now();
    std::thread::sleep(GRACE);
    let reason = if building.load(Ordering::SeqCst) {
        // The sandbox is killing and removing the build: let it, within bounds.
        while building.load(Ordering::SeqCst) && signalled.elapsed() < GRACE + SANDBOX_CLEANUP {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The build's clean-up is done; what follows stops at its next step.
        std::thread::sleep(GRACE);
        "the build was stopped"
    } else {
        "stopped waiting"
    };
    eprintln!("reprove: interrupted: {reason}; exiting without a verdict");
    std::process::exit(i32::from(INFRASTRUCTURE_ERROR));
}

struct Tracked {
    inner: Arc<dyn Progress>,
    building: Arc<AtomicBool>,
}

impl Progress for Tracked {
    fn start(&self, step: Step) {
        if step == Step::Build {
            self.building.store(true, Ordering::SeqCst);
        }
        self.inner.start(step);
    }

    fn finish(&self, step: Step, elapsed: Duration) {
        if step == Step::Build {
            self.building.store(false, Ordering::SeqCst);
        }
        self.inner.finish(step, elapsed);
    }
}
