//! What the library logs, captured in a test.

use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::SubscriberExt as _;

/// Each event as ` message=… field=value …`, in order.
pub type Lines = Arc<Mutex<Vec<String>>>;

struct Capture(Lines);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={v:?}", f.name()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut f = Fields(String::new());
        e.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }
}

/// Captures this thread's events (every level) until the guard is dropped.
pub struct Captured {
    pub lines: Lines,
    _log: tracing::subscriber::DefaultGuard,
    _anchor: tracing::Dispatch,
}

/// Starts capturing on this thread (a `#[tokio::test]` runs its tasks here).
pub fn capture() -> Captured {
    let lines: Lines = Arc::default();
    // tracing caches each callsite's interest for the whole process, and
    // while only one dispatcher exists it asks the default of the thread
    // that reaches the callsite first (tokio-rs/tracing#3611): a sibling
    // test with no subscriber would turn an event off for this test too.
    // With a second dispatcher alive, tracing asks every registered one.
    let anchor = tracing::Dispatch::new(tracing_subscriber::registry());
    let log = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(Capture(lines.clone())),
    );
    tracing::callsite::rebuild_interest_cache();
    Captured {
        lines,
        _log: log,
        _anchor: anchor,
    }
}
