//! Slots shared fairly between tenants: at most `total` holders at once, and at most
//! `per_tenant` of one tenant, so one tenant's burst of work cannot take every slot and
//! keep another tenant's work waiting behind it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub struct TenantSlots {
    total: usize,
    per_tenant: usize,
    held: Mutex<Held>,
    released: Notify,
}

#[derive(Default)]
struct Held {
    all: usize,
    by_tenant: HashMap<String, usize>,
}

/// A slot, given back when dropped.
pub struct Slot {
    slots: Arc<TenantSlots>,
    tenant: String,
}

impl TenantSlots {
    pub fn new(total: usize, per_tenant: usize) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(TenantSlots {
            total,
            per_tenant: per_tenant.clamp(1, total),
            held: Mutex::new(Held::default()),
            released: Notify::new(),
        })
    }

    /// A slot for `tenant` if one is free now.
    pub fn try_acquire(self: &Arc<Self>, tenant: &str) -> Option<Slot> {
        let mut held = self.held.lock().ok()?;
        let mine = held.by_tenant.get(tenant).copied().unwrap_or(0);
        if held.all >= self.total || mine >= self.per_tenant {
            return None;
        }
        held.all += 1;
        held.by_tenant.insert(tenant.to_string(), mine + 1);
        Some(Slot {
            slots: self.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// A slot for `tenant`, waiting until one is free. Waiters of a tenant at its cap never
    /// hold up those of another tenant.
    pub async fn acquire(self: &Arc<Self>, tenant: &str) -> Slot {
        loop {
            // Registered before the check, so a release between the two is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(slot) = self.try_acquire(tenant) {
                return slot;
            }
            released.await;
        }
    }

    /// Resolves after the next release (for a dispatcher that picks what to start itself).
    /// Call `enable` on it before looking for room, as `acquire` does.
    pub fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }

    /// Slots of `tenant` held now.
    pub fn held_by(&self, tenant: &str) -> usize {
        self.held
            .lock()
            .map(|h| h.by_tenant.get(tenant).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.slots.held.lock() {
            held.all = held.all.saturating_sub(1);
            if let Some(n) = held.by_tenant.get_mut(&self.tenant) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    held.by_tenant.remove(&self.tenant);
                }
            }
        }
        self.slots.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_tenant_cannot_take_every_slot() {
        let slots = TenantSlots::new(4, 2);
        let b1 = slots.try_acquire("b").unwrap();
        let _b2 = slots.try_acquire("b").unwrap();
        assert!(slots.try_acquire("b").is_none(), "b is at its cap");
        let _a1 = slots.try_acquire("a").unwrap();
        let _a2 = slots.try_acquire("a").unwrap();
        assert!(slots.try_acquire("c").is_none(), "all four are taken");
        assert_eq!(slots.held_by("b"), 2);
        // A waiter of b gets b's slot back; c waits for any.
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire("b").await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(b1);
        let b3 = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(slots.held_by("b"), 2);
        drop(b3);
        assert_eq!(slots.held_by("b"), 1);
        assert!(slots.try_acquire("c").is_some());
    }
}
