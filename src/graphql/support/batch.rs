//! When a request's loaders send their batches: as soon as the request can go no further
//! without them, never after a delay.
//!
//! The executor resolves a request's fields in one task, each field a future polled in
//! turn; a field that needs a row asks its loader, which only notes the key. When the
//! request's future then returns `Pending`, every field that could have asked has asked:
//! [`Batched`] starts each loader's batch at that moment, so a page's rows all go in one
//! statement and a lone lookup goes at once. A load made where no [`Batched`] drives the
//! request (a unit outside the GraphQL executor) is sent at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};

/// A batch that is due: started by the request's driver.
pub(super) type Due = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// The batches a request's loaders have made due, and whether a driver runs them.
#[derive(Default)]
pub struct Batcher {
    due: Mutex<Vec<Due>>,
    /// Set once a [`Batched`] has polled the request: from then on loads wait for it.
    driven: AtomicBool,
    /// Set while the driver polls the request, when it looks at what is due afterwards.
    polling: AtomicBool,
    /// The driver's task, to wake when a batch is made due from elsewhere (a task the
    /// request spawned).
    waker: Mutex<Option<Waker>>,
}

impl Batcher {
    /// Whether a driver will start batches made due (else a loader sends its own).
    pub(super) fn is_driven(&self) -> bool {
        self.driven.load(Ordering::Acquire)
    }

    pub(super) fn make_due(&self, batch: Due) {
        lock(&self.due).push(batch);
        if !self.polling.load(Ordering::Acquire)
            && let Some(waker) = lock(&self.waker).as_ref()
        {
            waker.wake_by_ref();
        }
    }

    fn take_due(&self) -> Vec<Due> {
        std::mem::take(&mut *lock(&self.due))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `request` driven so that its loaders' batches start whenever it waits.
pub fn batched<F: Future>(batcher: Arc<Batcher>, request: F) -> Batched<F> {
    Batched {
        request: Box::pin(request),
        answer: None,
        batcher,
        running: FuturesUnordered::new(),
    }
}

/// A request and the batches it is waiting for, polled together in its task.
pub struct Batched<F: Future> {
    request: Pin<Box<F>>,
    /// The request's answer, once it has one, while batches it started still run.
    answer: Option<F::Output>,
    batcher: Arc<Batcher>,
    running: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl<F: Future> Batched<F> {
    /// Polls the batches under way until none is ready (each that ends wakes the request).
    fn progress(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some(())) = self.running.poll_next_unpin(cx) {}
    }
}

// Nothing in it relies on being pinned: the request is pinned in its own box.
impl<F: Future> Unpin for Batched<F> {}

impl<F: Future> Future for Batched<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        {
            let mut waker = lock(&this.batcher.waker);
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        this.batcher.driven.store(true, Ordering::Release);
        this.progress(cx);
        if this.answer.is_none() {
            this.batcher.polling.store(true, Ordering::Release);
            let polled = this.request.as_mut().poll(cx);
            this.batcher.polling.store(false, Ordering::Release);
            if let Poll::Ready(answer) = polled {
                this.answer = Some(answer);
            }
        }
        if this.answer.is_some() {
            // A field that failed may leave the loads of its siblings in a batch under
            // way: it ends before the request does, so no statement is cut off midway on
            // the unit's connection.
            if this.running.is_empty() {
                return Poll::Ready(this.answer.take().expect("just checked"));
            }
            return Poll::Pending;
        }
        // Everything that could ask has asked: start what it asked for.
        let due = this.batcher.take_due();
        if !due.is_empty() {
            this.running.extend(due.into_iter().map(|start| start()));
            this.progress(cx);
        }
        Poll::Pending
    }
}
