//! Who asks, as far as the application cares: the API key a request came
//! with, by name. The name is recorded as the creator (`created_by`) of the
//! holds and orders the key makes. A key limited to its own (a
//! `storefront` key, without `read` or `admin`) finds nothing else: a hold
//! or an order another key created is "not found" to it, exactly like one
//! that does not exist, so its id (ids are sequential) tells it nothing.
//! Without keys nothing is recorded and everything is visible.

/// The key behind a request (`api::auth::Guard` leaves it for the handler).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The key's name; `None` without keys.
    pub key: Option<String>,
    /// Sees and uses only what this key created.
    pub own_only: bool,
}

impl Caller {
    /// No key: records no creator, sees everything.
    pub fn anyone() -> Caller {
        Caller::default()
    }

    /// Whether it may see and use what `created_by` created.
    pub fn may_see(&self, created_by: Option<&str>) -> bool {
        !self.own_only || (self.key.is_some() && created_by == self.key.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_only_sees_its_own_and_nothing_anonymous() {
        let web = Caller {
            key: Some("web".into()),
            own_only: true,
        };
        assert!(web.may_see(Some("web")));
        assert!(!web.may_see(Some("app")));
        assert!(!web.may_see(None), "made without a key: not its own");
        let ops = Caller {
            key: Some("ops".into()),
            own_only: false,
        };
        assert!(ops.may_see(Some("web")) && ops.may_see(None));
        assert!(Caller::anyone().may_see(Some("web")));
        // Limited but nameless never happens; it would see nothing.
        let odd = Caller {
            key: None,
            own_only: true,
        };
        assert!(!odd.may_see(None));
    }
}
