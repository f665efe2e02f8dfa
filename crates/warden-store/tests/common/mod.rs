//! One suite, two backends: every test takes a [`Backend`] and runs once on
//! a fresh SQLite file and once on a fresh PostgreSQL database.

#![allow(dead_code)]

use std::time::Duration;

use warden_store::{NewOrg, Org, Store, StoreOptions, Transport, Written};
use warden_testkit::{TempPostgres, TempSqlite};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Keeps the database alive as long as the test holds it.
pub enum TestDb {
    Sqlite(TempSqlite),
    Postgres(TempPostgres),
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::Sqlite(TempSqlite::new()),
            Backend::Postgres => TestDb::Postgres(TempPostgres::start().await),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite(db) => db.url(),
            TestDb::Postgres(db) => db.url(),
        }
    }

    pub fn postgres(&mut self) -> &mut TempPostgres {
        match self {
            TestDb::Postgres(pg) => pg,
            TestDb::Sqlite(_) => panic!("not a PostgreSQL test"),
        }
    }
}

pub const KEY: [u8; 32] = [42; 32];

pub fn options() -> StoreOptions {
    let mut o = StoreOptions::new(KEY);
    o.heartbeat_interval = Duration::from_millis(200);
    o.poll_interval = Duration::from_millis(200);
    o
}

pub async fn open(backend: Backend) -> (TestDb, Store) {
    let db = TestDb::new(backend).await;
    let store = Store::open(db.url(), options()).await.expect("open store");
    (db, store)
}

pub fn http(url: &str) -> Transport {
    Transport::Http { url: url.into() }
}

/// Creates an org named after its slug.
pub async fn create_org(store: &Store, actor: &str, slug: &str) -> Written<Org> {
    store
        .create_org(
            actor,
            NewOrg {
                slug: slug.into(),
                name: String::new(),
            },
        )
        .await
        .expect("create org")
}

/// Runs an `async fn(Backend)` test on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )*};
}
