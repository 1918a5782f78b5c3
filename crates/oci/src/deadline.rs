//! Deadlines of registry traffic: how long a connection may take to open, how
//! long a registry may stay silent, and how long all the registry work of one
//! command may take.
//!
//! Every request this crate makes (manifests, blobs, uploads, token
//! exchanges, referrers) is bounded by all three:
//!
//! - **connect**: opening one TCP (and TLS) connection;
//! - **idle**: the wait for an answer (from the request's start to the
//!   answer's headers; a push sends its blobs in chunks of at most 4 MiB, each
//!   sent and answered within it), and every pause while reading an answer's
//!   body (the clock restarts with each byte). It is the HTTP client's read
//!   timeout;
//! - **overall**: the time the registry operations of one command (pulls with
//!   their unpacking, pushes, fetches) take together, retries and their backoff
//!   included. It is drawn from an [`OverallClock`] that the clones of one
//!   [`crate::RegistryOptions`] share.
//!
//! The connect and idle deadlines bound each HTTP exchange. Before each request
//! to a registry it holds no token for (an anonymous one), oci-client probes
//! `/v2/` and ignores the probe's failure, so a registry that answers the first
//! probe and then stalls costs up to two idle deadlines before the error.
//!
//! An expired deadline is final: a request whose connect or idle deadline
//! expired is not retried (a registry that did not answer in that time gets no
//! second chance to multiply it), and no retry outlives the overall deadline.
//! Other transient failures (5xx answers, refused or broken connections) are
//! still retried with backoff.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stdx::setting::Setting;

/// The default connect deadline: 5 s.
pub const DEFAULT_CONNECT: Duration = Duration::from_secs(5);
/// The default idle deadline: 20 s.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(20);
/// The default overall deadline: 5 minutes, enough for a large toolchain image
/// on a link of a few MB/s; an admission check wants far less.
pub const DEFAULT_OVERALL: Duration = Duration::from_secs(300);

/// The deadlines of registry traffic (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Opening a connection.
    pub connect: Duration,
    /// No byte received.
    pub idle: Duration,
    /// All the registry work of one command.
    pub overall: Duration,
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        Deadlines { connect: DEFAULT_CONNECT, idle: DEFAULT_IDLE, overall: DEFAULT_OVERALL }
    }
}

impl Deadlines {
    /// The value of `deadline`.
    pub fn get(&self, deadline: Deadline) -> Duration {
        match deadline {
            Deadline::Connect => self.connect,
            Deadline::Idle => self.idle,
            Deadline::Overall => self.overall,
        }
    }
}

impl fmt::Display for Deadlines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connect {}, idle {}, overall {}", Secs(self.connect), Secs(self.idle), Secs(self.overall))
    }
}

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// [`Deadlines::connect`].
    Connect,
    /// [`Deadlines::idle`].
    Idle,
    /// [`Deadlines::overall`].
    Overall,
}

impl Deadline {
    /// The setting that changes it.
    pub fn setting(self) -> Setting {
        match self {
            Deadline::Connect => Setting::RegistryConnectTimeout,
            Deadline::Idle => Setting::RegistryIdleTimeout,
            Deadline::Overall => Setting::RegistryTimeout,
        }
    }

    /// What the registry failed to do in time.
    pub(crate) fn failure(self) -> &'static str {
        match self {
            Deadline::Connect => "accepted no connection",
            Deadline::Idle => "did not answer",
            Deadline::Overall => "did not finish",
        }
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Deadline::Connect => "connect deadline",
            Deadline::Idle => "idle deadline",
            Deadline::Overall => "overall deadline",
        })
    }
}

/// A registry did not connect, answer or finish within a deadline
/// ([`crate::ToolchainError::Deadline`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("registry {registry} {} within the {deadline} of {} while {action} ({image}); {} sets it ({deadlines})", deadline.failure(), Secs(deadlines.get(*deadline)), deadline.setting())]
pub struct Expired {
    /// The registry (`host[:port]`).
    pub registry: String,
    /// The image.
    pub image: String,
    /// What reprove was doing.
    pub action: String,
    /// Which deadline expired.
    pub deadline: Deadline,
    /// The deadlines in force.
    pub deadlines: Deadlines,
}

/// A duration as a message shows it: `20 s`, `1.5 s`, `250 ms`.
pub(crate) struct Secs(pub(crate) Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_millis() == 0 {
            write!(f, "{} s", d.as_secs())
        } else if d < Duration::from_secs(1) {
            write!(f, "{} ms", d.as_millis())
        } else {
            write!(f, "{:.1} s", d.as_secs_f64())
        }
    }
}

/// The time the registry operations of one command have taken, against which
/// [`Deadlines::overall`] is counted. Clones share it; `default()` starts at zero.
/// One command (or one job of a service) uses one clock: give each its own.
///
/// An operation is one registry client's life (a pull, a push, an attestation
/// fetch): it gets what is left when it starts and is charged its whole time
/// when it ends, so operations that overlap are each charged in full — the
/// overall deadline is never exceeded, at worst reached early. Time between
/// operations (a build between a pull and a push) is not counted.
#[derive(Debug, Clone, Default)]
pub struct OverallClock {
    spent: Arc<Mutex<Duration>>,
}

impl OverallClock {
    /// The registry time spent so far (by operations that ended).
    pub fn spent(&self) -> Duration {
        self.spent.lock().map_or(Duration::ZERO, |s| *s)
    }

    /// Starts an operation: its deadline is now plus what is left of `overall`.
    pub(crate) fn start(&self, overall: Duration) -> Operation {
        let start = Instant::now();
        let left = overall.saturating_sub(self.spent());
        Operation { start, deadline: tokio::time::Instant::from_std(start) + left, clock: self.clone() }
    }
}

/// One registry operation (a pull, a push, a fetch session): it charges its
/// time to the clock when it ends.
#[derive(Debug)]
pub(crate) struct Operation {
    start: Instant,
    /// When the overall deadline expires for it.
    pub(crate) deadline: tokio::time::Instant,
    clock: OverallClock,
}

impl Drop for Operation {
    fn drop(&mut self) {
        if let Ok(mut spent) = self.clock.spent.lock() {
            *spent += self.start.elapsed();
        }
    }
}

/// Which deadline, if any, an HTTP client error is the expiry of: a timed-out
/// connect is [`Deadline::Connect`], any other timeout (no byte read within the
/// read timeout) [`Deadline::Idle`]. Looks through oci-client's and I/O wrappers.
pub(crate) fn expired(e: &(dyn std::error::Error + 'static)) -> Option<Deadline> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<reqwest::Error>() {
            if r.is_timeout() {
                return Some(if r.is_connect() { Deadline::Connect } else { Deadline::Idle });
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // An I/O error's source() skips the error it wraps.
            if let Some(inner) = io.get_ref() {
                if let Some(d) = expired(inner) {
                    return Some(d);
                }
            }
        }
        current = e.source();
    }
    None
}

/// [`expired`] for oci-client's errors, whose transparent variants hide the
/// HTTP client's error from `source()`.
pub(crate) fn expired_oci(e: &oci_client::errors::OciDistributionError) -> Option<Deadline> {
    use oci_client::errors::OciDistributionError as E;
    match e {
        E::RequestError(r) => expired(r),
        E::IoError(io) => expired(io),
        other => expired(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_messages_show_them() {
        assert_eq!(Secs(Duration::from_secs(20)).to_string(), "20 s");
        assert_eq!(Secs(Duration::from_millis(1500)).to_string(), "1.5 s");
        assert_eq!(Secs(Duration::from_millis(250)).to_string(), "250 ms");
        assert_eq!(Deadlines::default().to_string(), "connect 5 s, idle 20 s, overall 300 s");
    }

    #[test]
    fn the_message_names_the_deadline_its_value_setting_registry_and_action() {
        let e = Expired {
            registry: "127.0.0.1:5000".into(),
            image: "127.0.0.1:5000/go:1".into(),
            action: "fetching the manifest".into(),
            deadline: Deadline::Idle,
            deadlines: Deadlines::default(),
        };
        assert_eq!(
            e.to_string(),
            "registry 127.0.0.1:5000 did not answer within the idle deadline of 20 s while fetching the manifest \
             (127.0.0.1:5000/go:1); registry_idle_timeout sets it (connect 5 s, idle 20 s, overall 300 s)"
        );
        let connect = Expired { deadline: Deadline::Connect, ..e.clone() };
        assert!(connect.to_string().contains("accepted no connection within the connect deadline of 5 s"));
        let overall = Expired { deadline: Deadline::Overall, ..e };
        assert!(overall.to_string().contains("did not finish within the overall deadline of 300 s"));
        assert!(overall.to_string().contains("registry_timeout sets it"));
    }

    #[test]
    fn defaults_are_seconds_not_minutes() {
        let d = Deadlines::default();
        assert!(d.connect <= Duration::from_secs(10));
        assert!(d.idle <= Duration::from_secs(30));
        assert!(d.connect < d.idle && d.idle < d.overall);
    }

    #[test]
    fn operations_draw_on_one_clock() {
        let clock = OverallClock::default();
        let overall = Duration::from_secs(60);
        let first = clock.start(overall);
        std::thread::sleep(Duration::from_millis(30));
        drop(first);
        let spent = clock.spent();
        assert!(spent >= Duration::from_millis(30), "{spent:?}");
        // A clone shares the account; the next operation gets what is left.
        let second = clock.clone().start(overall);
        let left = second.deadline - tokio::time::Instant::from_std(second.start);
        assert!(left <= overall - Duration::from_millis(30), "{left:?}");
        // A fresh clock starts at zero.
        assert_eq!(OverallClock::default().spent(), Duration::ZERO);
        // An exhausted clock leaves nothing.
        let exhausted = clock.start(Duration::from_millis(1));
        assert_eq!(exhausted.deadline, tokio::time::Instant::from_std(exhausted.start));
    }

    /// The HTTP client's error for a GET of `addr` with an idle deadline of 200 ms.
    fn get_error(addr: std::net::SocketAddr) -> reqwest::Error {
        crate::install_crypto_provider();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .read_timeout(Duration::from_millis(200))
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            match client.get(format!("http://{addr}/v2/")).send().await {
                Ok(r) => panic!("an answer: {}", r.status()),
                Err(e) => e,
            }
        })
    }

    #[test]
    fn a_silent_server_is_the_idle_deadline_also_behind_oci_client_and_io_errors() {
        use oci_client::errors::OciDistributionError;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        // Accepted by the kernel, never answered.
        let e = get_error(addr);
        assert_eq!(expired(&e), Some(Deadline::Idle), "{e:?}");
        let e = OciDistributionError::RequestError(get_error(addr));
        assert_eq!(expired_oci(&e), Some(Deadline::Idle), "{e:?}");
        let e = OciDistributionError::IoError(std::io::Error::other(get_error(addr)));
        assert_eq!(expired_oci(&e), Some(Deadline::Idle), "{e:?}");
        drop(listener);
        // Refused: a broken connection, not a deadline (it is retried).
        let e = get_error(addr);
        assert_eq!(expired(&e), None, "{e:?}");
        assert!(e.is_connect(), "{e:?}");
    }

    #[test]
    fn io_wrapped_errors_are_not_deadlines_unless_they_are() {
        let plain = std::io::Error::other("broken pipe");
        assert_eq!(expired(&plain), None);
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "x");
        // Only the HTTP client's timeouts are deadlines (it knows connect from read).
        assert_eq!(expired(&timed_out), None);
    }
}
