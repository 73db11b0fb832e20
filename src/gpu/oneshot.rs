//! A one-value channel whose receiver is a future: how a wgpu callback (buffer mapping) wakes
//! the async operation waiting for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The sender is gone: no value will come after `value`.
    closed: bool,
}

/// Sends the one value.
pub struct Sender<T>(Arc<Mutex<Slot<T>>>);

/// Resolves to the value, or `None` when the sender was dropped without sending.
pub struct Receiver<T>(Arc<Mutex<Slot<T>>>);

/// A connected sender and receiver.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
        closed: false,
    }));
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    /// Hands `value` to the receiver and wakes it.
    pub fn send(self, value: T) {
        if let Ok(mut slot) = self.0.lock() {
            slot.value = Some(value);
        }
        // Dropping `self` wakes the receiver.
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = match self.0.lock() {
            Ok(mut slot) => {
                slot.closed = true;
                slot.waker.take()
            }
            Err(_) => None,
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let Ok(mut slot) = self.0.lock() else {
            return Poll::Ready(None);
        };
        if let Some(v) = slot.value.take() {
            return Poll::Ready(Some(v));
        }
        if slot.closed {
            return Poll::Ready(None);
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_the_value_or_none() {
        let (tx, rx) = channel();
        tx.send(7);
        assert_eq!(pollster::block_on(rx), Some(7));
        let (tx, rx) = channel::<u8>();
        drop(tx);
        assert_eq!(pollster::block_on(rx), None);
        let (tx, rx) = channel();
        let t = std::thread::spawn(move || tx.send("late"));
        assert_eq!(pollster::block_on(rx), Some("late"));
        t.join().unwrap();
    }
}
