//! The inner service shared by the response futures that call it: [`Gate`].

use http::Request;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use tower::Service;

/// The inner service, shared by the response futures that call it.
///
/// A future calls it under the lock right after `poll_ready` said ready, so readiness is never
/// used twice. A service keeps only the last waker it was polled with, so futures that find it
/// not ready also wait here, and every call (or a waiting future going away) wakes them all to
/// ask again: no wake-up is lost.
pub(crate) struct Gate<S> {
    service: Mutex<S>,
    waiting: Mutex<Vec<Waker>>,
    any_waiting: AtomicBool,
}

impl<S> Gate<S> {
    pub(crate) fn new(service: S) -> Self {
        Self {
            service: Mutex::new(service),
            waiting: Mutex::default(),
            any_waiting: AtomicBool::new(false),
        }
    }

    /// Calls the service with `request` if it is ready; else keeps `cx`'s waker and hands
    /// the request back.
    pub(crate) fn try_call<B>(
        &self,
        cx: &mut Context<'_>,
        request: Request<B>,
    ) -> Called<S::Future, B, S::Error>
    where
        S: Service<Request<B>>,
    {
        let mut service = self.service.lock().unwrap_or_else(PoisonError::into_inner);
        match service.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                let fut = service.call(request);
                drop(service);
                self.wake_all();
                Called::Sent(fut)
            }
            Poll::Ready(Err(err)) => {
                drop(service);
                self.wake_all();
                Called::Failed(err)
            }
            Poll::Pending => {
                // Registered before the lock is released, so the next caller's `wake_all`
                // cannot miss it.
                let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
                self.any_waiting.store(true, Ordering::SeqCst);
                drop(waiting);
                drop(service);
                Called::NotReady(request)
            }
        }
    }

    /// Wakes every future waiting for the service to be ready.
    pub(crate) fn wake_all(&self) {
        if self.any_waiting.swap(false, Ordering::SeqCst) {
            let waiting =
                std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
            for waker in waiting {
                waker.wake();
            }
        }
    }
}

/// What [`Gate::try_call`] did.
// Moved once per request; boxing the request would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Called<F, B, E> {
    /// Called; the service's future.
    Sent(F),
    /// Not ready: the request back, the waker kept.
    NotReady(Request<B>),
    /// The service failed.
    Failed(E),
}
