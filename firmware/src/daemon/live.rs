//! [`Live`]: a value the daemon replaces whole on reload while readers keep the one they
//! took. Shared by every subsystem (session settings, relay settings): it imports none of
//! them.

use std::sync::{Arc, PoisonError, RwLock};

/// A value that is replaced whole while readers keep the one they took.
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    /// Starts with `value`.
    pub fn new(value: T) -> Self {
        Self(RwLock::new(Arc::new(value)))
    }

    /// The current value (the lock is held only to clone the `Arc`: never across an await).
    pub fn get(&self) -> Arc<T> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the value; holders of the old one keep it until they drop it.
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
    }
}
