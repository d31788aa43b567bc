//! Each object's line: its calls run one at a time, in arrival order, and storage is open only
//! to the call running now.
//!
//! A line is a fair (FIFO) `tokio::sync::Mutex`: waiters take it in the order they asked. The
//! map of lines holds an entry only while some call is in line or running, so memory follows
//! the calls in progress, not the number of objects ever called. The running call's id sits
//! behind a read-write lock: storage holds it for reading while it works, and the call's end
//! takes it for writing, so no storage work of a call outlives the call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedMutexGuard, OwnedRwLockReadGuard, RwLock};

type Key = (String, String);

struct Line {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The id of the call running now.
    running: Arc<RwLock<Option<String>>>,
}

struct Slot {
    line: Arc<Line>,
    /// Calls in line or running.
    users: usize,
}

/// Every object's line, by (resource id, object).
pub(crate) struct Lines {
    slots: Mutex<HashMap<Key, Slot>>,
    max_waiting: usize,
}

/// A call's place in its object's line (counted until dropped).
pub(crate) struct Place {
    lines: Arc<Lines>,
    key: Key,
    line: Arc<Line>,
}

/// The object's one turn: held by the running call. The guard is declared first so it is
/// released before the place is given up (and the line perhaps forgotten).
pub(crate) struct Turn {
    _guard: OwnedMutexGuard<()>,
    place: Place,
}

/// Why a call got no place in line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LineFull;

impl Lines {
    pub(crate) fn new(max_waiting: usize) -> Arc<Lines> {
        Arc::new(Lines { slots: Mutex::default(), max_waiting })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        // The map stays consistent through a panic elsewhere: every change is one statement.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place at the end of the line of `object` of `resource`.
    pub(crate) fn join(self: &Arc<Self>, resource: &str, object: &str) -> Result<Place, LineFull> {
        let key = (resource.to_owned(), object.to_owned());
        let mut slots = self.slots();
        let slot = slots.entry(key.clone()).or_insert_with(|| Slot {
            line: Arc::new(Line { turn: Arc::default(), running: Arc::default() }),
            users: 0,
        });
        // One of the users may be running; the rest wait.
        if slot.users > self.max_waiting {
            return Err(LineFull);
        }
        slot.users += 1;
        Ok(Place { lines: Arc::clone(self), key, line: Arc::clone(&slot.line) })
    }

    /// Storage's hold on `object` while call `call` runs on it: None when that call is not
    /// the one running now. The hold keeps the call from ending until it is dropped.
    pub(crate) async fn in_call(
        &self,
        resource: &str,
        object: &str,
        call: &str,
    ) -> Option<OwnedRwLockReadGuard<Option<String>>> {
        let running = {
            let slots = self.slots();
            Arc::clone(&slots.get(&(resource.to_owned(), object.to_owned()))?.line.running)
        };
        let hold = running.read_owned().await;
        (hold.as_deref() == Some(call)).then_some(hold)
    }

    #[cfg(test)]
    fn lines(&self) -> usize {
        self.slots().len()
    }
}

impl Place {
    /// Waits (up to `limit`) for the object's turn.
    pub(crate) async fn wait(self, limit: Duration) -> Result<Turn, Place> {
        match tokio::time::timeout(limit, Arc::clone(&self.line.turn).lock_owned()).await {
            Ok(guard) => Ok(Turn { _guard: guard, place: self }),
            Err(_) => Err(self),
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut slots = self.lines.slots();
        if let Some(slot) = slots.get_mut(&self.key) {
            slot.users = slot.users.saturating_sub(1);
            if slot.users == 0 {
                slots.remove(&self.key);
            }
        }
    }
}

impl Turn {
    /// Marks call `call` as the one running: storage naming it is open from now.
    pub(crate) async fn begin(&self, call: &str) {
        *self.place.line.running.write().await = Some(call.to_owned());
    }

    /// Closes storage to the call, once storage work it started has finished.
    pub(crate) async fn end(self) {
        *self.place.line.running.write().await = None;
        drop(self);
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // A turn dropped without `end` (its task cancelled) still closes storage when it can;
        // the next turn's `begin` overwrites the id in any case.
        if let Ok(mut running) = self.place.line.running.try_write() {
            *running = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn turns_go_in_arrival_order_one_at_a_time_and_lines_are_forgotten() {
        let lines = Lines::new(100);
        let first = lines.join("r", "o").expect("join").wait(Duration::from_secs(5)).await.ok().expect("turn");
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for index in 0..20 {
            let (lines, order) = (Arc::clone(&lines), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let place = lines.join("r", "o").expect("join");
                let turn = place.wait(Duration::from_secs(5)).await.ok().expect("turn");
                order.lock().expect("order").push(index);
                tokio::task::yield_now().await;
                drop(turn);
            }));
            // Each task asks for the turn before the next one is spawned.
            tokio::task::yield_now().await;
        }
        // Another object's line is its own.
        let other = lines.join("r", "p").expect("join").wait(Duration::from_secs(5)).await.ok().expect("turn");
        drop(other);
        drop(first);
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(*order.lock().expect("order"), (0..20).collect::<Vec<_>>());
        assert_eq!(lines.lines(), 0, "no line is kept once nobody is in it");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_line_refuses_and_storage_opens_only_to_the_running_call() {
        let lines = Lines::new(1);
        let turn = lines.join("r", "o").expect("join").wait(Duration::from_secs(5)).await.ok().expect("turn");
        let waiting = lines.join("r", "o").expect("one may wait");
        assert!(lines.join("r", "o").is_err(), "a second may not");
        let late = waiting.wait(Duration::from_millis(10)).await;
        assert!(late.is_err(), "the turn is held");
        drop(late);
        assert!(lines.in_call("r", "o", "call_1").await.is_none(), "no call has begun");
        turn.begin("call_1").await;
        let hold = lines.in_call("r", "o", "call_1").await.expect("open to the running call");
        assert!(lines.in_call("r", "o", "call_2").await.is_none());
        assert!(lines.in_call("r", "x", "call_1").await.is_none(), "only on its own object");
        // The call cannot end while storage work holds it.
        let ending = tokio::spawn(turn.end());
        tokio::task::yield_now().await;
        assert!(!ending.is_finished());
        drop(hold);
        ending.await.expect("end");
        assert!(lines.in_call("r", "o", "call_1").await.is_none(), "closed once the call ended");
        assert_eq!(lines.lines(), 0);
    }
}
