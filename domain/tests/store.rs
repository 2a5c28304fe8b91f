//! The memory store against the conformance suite every store passes.

use std::sync::Arc;

use monzo_auth_domain::store::MemoryStore;
use monzo_auth_store_conformance::conformance_suite;

conformance_suite!(memory, OnCreate, Arc::new(MemoryStore::new()));
