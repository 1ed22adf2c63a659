//! Who follows which bill: anonymous followers with one delivery channel each,
//! stored in a NATS key-value bucket replicated like the event stream.
//!
//! The hub's follow API writes them ([`FollowStore::create`],
//! [`FollowStore::update`], [`FollowStore::delete`]); the notifier reads a
//! bill's followers when the bill moves ([`FollowStore::followers_of`]) and
//! removes a follower whose push subscription is gone.

mod model;
mod store;
pub mod target;

pub use model::{
    check_bill, check_bills, check_channel, decode_b64url, Channel, Delivery, Follower,
    InvalidFollow, Lang, Limits, PushKeys, PushSubscription,
};
pub use store::{is_vapid_public_key, FollowStore, StoreError, DEFAULT_BUCKET};
pub use target::{BlockedTarget, Egress, PushHosts, DEFAULT_PUSH_HOSTS};
