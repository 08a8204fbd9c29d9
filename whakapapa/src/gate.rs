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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Ready only while `open` is set; counts its calls.
    struct Door {
        open: Arc<AtomicBool>,
        calls: usize,
    }

    impl Service<Request<u32>> for Door {
        type Response = u32;
        type Error = &'static str;
        type Future = std::future::Ready<Result<u32, &'static str>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            if self.open.load(Ordering::SeqCst) {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }

        fn call(&mut self, request: Request<u32>) -> Self::Future {
            self.calls += 1;
            std::future::ready(Ok(*request.body()))
        }
    }

    #[test]
    fn futures_that_find_it_busy_are_all_woken_by_the_next_call() {
        let open = Arc::new(AtomicBool::new(false));
        let gate = Gate::new(Door {
            open: open.clone(),
            calls: 0,
        });
        let (a, b) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let (wa, wb): (Waker, Waker) = (a.clone().into(), b.clone().into());
        let (mut ca, mut cb) = (Context::from_waker(&wa), Context::from_waker(&wb));

        // Both find it not ready, get their requests back, and wait; asking twice with the
        // same waker keeps it once.
        let ra = match gate.try_call(&mut ca, Request::new(1)) {
            Called::NotReady(r) => r,
            _ => panic!("ready while closed"),
        };
        assert!(matches!(
            gate.try_call(&mut ca, Request::new(1)),
            Called::NotReady(_)
        ));
        let rb = match gate.try_call(&mut cb, Request::new(2)) {
            Called::NotReady(r) => r,
            _ => panic!("ready while closed"),
        };
        assert_eq!(gate.waiting.lock().unwrap().len(), 2);
        assert_eq!(a.0.load(Ordering::SeqCst) + b.0.load(Ordering::SeqCst), 0);

        // The next call wakes every waiting future once, and readiness is used once per call.
        open.store(true, Ordering::SeqCst);
        assert!(matches!(gate.try_call(&mut ca, ra), Called::Sent(_)));
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        assert!(matches!(gate.try_call(&mut cb, rb), Called::Sent(_)));
        assert_eq!(gate.service.lock().unwrap().calls, 2);
        // Nobody waits any more: a call wakes no one.
        assert!(matches!(
            gate.try_call(&mut cb, Request::new(3)),
            Called::Sent(_)
        ));
        assert_eq!(a.0.load(Ordering::SeqCst) + b.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failing_service_wakes_the_waiting_futures_too() {
        struct Broken(Arc<AtomicBool>);
        impl Service<Request<u32>> for Broken {
            type Response = u32;
            type Error = &'static str;
            type Future = std::future::Ready<Result<u32, &'static str>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                if self.0.load(Ordering::SeqCst) {
                    Poll::Ready(Err("broken"))
                } else {
                    Poll::Pending
                }
            }
            fn call(&mut self, _: Request<u32>) -> Self::Future {
                unreachable!("never ready")
            }
        }
        let broken = Arc::new(AtomicBool::new(false));
        let gate = Gate::new(Broken(broken.clone()));
        let waiting = Arc::new(Count::default());
        let waker: Waker = waiting.clone().into();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            gate.try_call(&mut cx, Request::new(1)),
            Called::NotReady(_)
        ));
        broken.store(true, Ordering::SeqCst);
        let other_waker: Waker = Arc::new(Count::default()).into();
        let mut other = Context::from_waker(&other_waker);
        assert!(matches!(
            gate.try_call(&mut other, Request::new(2)),
            Called::Failed("broken")
        ));
        assert_eq!(waiting.0.load(Ordering::SeqCst), 1);
    }
}
