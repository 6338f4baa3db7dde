//! [`spawn`]: every task of the daemon that returns nothing is spawned as one type, a
//! boxed `dyn Future`. tokio instantiates its task machinery (poll, drop, shutdown, the
//! join handle's vtable: 1.5–2 KB on MIPS) once per spawned future type; one type keeps one
//! copy of it in the router binary instead of one per task kind. The cost is one
//! allocation and one indirect call per poll, nothing next to a task's own work.

use std::future::Future;
use std::pin::Pin;

use tokio::task::JoinHandle;

/// The one spawned type.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Spawns `f` on the current runtime as a [`Task`].
pub fn spawn(f: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
    tokio::spawn(Box::pin(f) as Task)
}

/// Spawns `f` on `rt` as a [`Task`].
pub fn spawn_on(
    rt: &tokio::runtime::Handle,
    f: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    rt.spawn(Box::pin(f) as Task)
}

/// The one blocking job type.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Runs `f` on tokio's blocking threads as a [`Job`] (one copy of the blocking task's
/// machinery, as [`spawn`] for tasks).
pub fn spawn_blocking(f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    tokio::task::spawn_blocking(Box::new(f) as Job)
}
