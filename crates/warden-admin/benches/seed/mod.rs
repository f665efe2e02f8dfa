//! Bulk seeding for benchmarks: writes generated `PolicyRows` straight into
//! the store's tables with multi-row INSERTs in one transaction (going
//! through the admin API row by row would take hours at 300k+ rows). The
//! store then loads them like any other database on `Store::open`.

use sqlx::{Any, AnyConnection, Connection, Executor};
use warden_policy::{PolicyRows, Scope, ToolFilter};

/// One bound value.
enum Val {
    Int(i64),
    Text(String),
    Null,
}

fn flag(b: bool) -> Val {
    Val::Int(i64::from(b))
}

fn json(f: &ToolFilter) -> Val {
    Val::Text(serde_json::to_string(f).expect("filters serialize"))
}

fn opt(v: Option<i64>) -> Val {
    v.map_or(Val::Null, Val::Int)
}

/// Rows per INSERT statement.
const BATCH: usize = 400;

async fn insert(conn: &mut AnyConnection, table: &str, columns: &[&str], rows: Vec<Vec<Val>>) {
    for chunk in rows.chunks(BATCH) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut n = 0;
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for j in 0..row.len() {
                if j > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        let mut q = sqlx::query::<Any>(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    Val::Int(i) => q.bind(*i),
                    Val::Text(t) => q.bind(t.clone()),
                    Val::Null => q.bind(Option::<i64>::None),
                };
            }
        }
        q.execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("seeding {table}: {e}"));
    }
}

/// Owner columns of scope rows: exactly one is set.
fn owner_cols(kind: usize, id: i64) -> Vec<Val> {
    (0..4)
        .map(|i| if i == kind { Val::Int(id) } else { Val::Null })
        .collect()
}

/// Writes `rows` into the (migrated, empty) database at `url`.
pub async fn seed(url: &str, rows: &PolicyRows, postgres: bool) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url)
        .await
        .expect("connect for seeding");
    if !postgres {
        conn.execute("PRAGMA foreign_keys = ON")
            .await
            .expect("pragma");
    }
    let mut tx = conn.begin().await.expect("begin");
    let now = 1_700_000_000_000i64;

    insert(
        &mut tx,
        "orgs",
        &["id", "slug", "name", "suspended", "created_at_ms"],
        rows.orgs
            .iter()
            .map(|o| {
                vec![
                    Val::Int(o.id.0),
                    Val::Text(o.slug.clone()),
                    Val::Text(o.slug.clone()),
                    flag(o.suspended),
                    Val::Int(now),
                ]
            })
            .collect(),
    )
    .await;
    let transport = r#"{"type":"http","url":"http://127.0.0.1:9/mcp"}"#;
    insert(
        &mut tx,
        "servers",
        &[
            "id",
            "slug",
            "owner_org",
            "name",
            "transport",
            "secret_headers",
            "enabled",
            "timeout_ms",
            "config_revision",
            "created_at_ms",
        ],
        rows.servers
            .iter()
            .map(|s| {
                vec![
                    Val::Int(s.id.0),
                    Val::Text(s.slug.clone()),
                    opt(s.owner_org.map(|o| o.0)),
                    Val::Text(s.slug.clone()),
                    Val::Text(transport.into()),
                    Val::Text("{}".into()),
                    flag(s.enabled),
                    Val::Int(30_000),
                    Val::Int(1),
                    Val::Int(now),
                ]
            })
            .collect(),
    )
    .await;
    insert(
        &mut tx,
        "org_grants",
        &["org_id", "server_id", "enabled", "filter"],
        rows.org_grants
            .iter()
            .map(|g| {
                vec![
                    Val::Int(g.org.0),
                    Val::Int(g.server.0),
                    flag(g.enabled),
                    json(&g.filter),
                ]
            })
            .collect(),
    )
    .await;
    insert(
        &mut tx,
        "toolsets",
        &["id", "org_id", "slug", "name", "created_at_ms"],
        rows.toolsets
            .iter()
            .map(|t| {
                vec![
                    Val::Int(t.id.0),
                    Val::Int(t.org.0),
                    Val::Text(t.slug.clone()),
                    Val::Text(t.slug.clone()),
                    Val::Int(now),
                ]
            })
            .collect(),
    )
    .await;
    insert(
        &mut tx,
        "toolset_servers",
        &["toolset_id", "org_id", "server_id", "filter"],
        rows.toolsets
            .iter()
            .flat_map(|t| {
                t.servers.iter().map(move |(s, f)| {
                    vec![Val::Int(t.id.0), Val::Int(t.org.0), Val::Int(s.0), json(f)]
                })
            })
            .collect(),
    )
    .await;
    insert(
        &mut tx,
        "teams",
        &[
            "id",
            "org_id",
            "slug",
            "name",
            "scope_inherit",
            "created_at_ms",
        ],
        rows.teams
            .iter()
            .map(|t| {
                vec![
                    Val::Int(t.id.0),
                    Val::Int(t.org.0),
                    Val::Text(t.slug.clone()),
                    Val::Text(t.slug.clone()),
                    flag(t.scope == Scope::Inherit),
                    Val::Int(now),
                ]
            })
            .collect(),
    )
    .await;
    insert(
        &mut tx,
        "agents",
        &[
            "id",
            "org_id",
            "team_id",
            "slug",
            "name",
            "scope_inherit",
            "created_at_ms",
        ],
        rows.agents
            .iter()
            .map(|a| {
                vec![
                    Val::Int(a.id.0),
                    Val::Int(a.org.0),
                    opt(a.team.map(|t| t.0)),
                    Val::Text(a.slug.clone()),
                    Val::Text(a.slug.clone()),
                    flag(a.scope == Scope::Inherit),
                    Val::Int(now),
                ]
            })
            .collect(),
    )
    .await;
    insert(
        &mut tx,
        "end_users",
        &[
            "id",
            "org_id",
            "external_id",
            "name",
            "scope_inherit",
            "created_at_ms",
        ],
        rows.end_users
            .iter()
            .map(|u| {
                vec![
                    Val::Int(u.id.0),
                    Val::Int(u.org.0),
                    Val::Text(u.external_id.clone()),
                    Val::Text(u.external_id.clone()),
                    flag(u.scope == Scope::Inherit),
                    Val::Int(now),
                ]
            })
            .collect(),
    )
    .await;
    insert(
        &mut tx,
        "keys",
        &[
            "id",
            "org_id",
            "name",
            "token_digest",
            "token_prefix",
            "team_id",
            "agent_id",
            "scope_inherit",
            "revoked",
            "expires_at_ms",
            "may_assert_end_user",
            "may_assert_agent",
            "created_at_ms",
        ],
        rows.keys
            .iter()
            .map(|k| {
                vec![
                    Val::Int(k.id.0),
                    Val::Int(k.org.0),
                    Val::Text(format!("key-{}", k.id.0)),
                    Val::Text(k.token_digest.clone()),
                    Val::Text("wdn_seeded".into()),
                    opt(k.team.map(|t| t.0)),
                    opt(k.agent.map(|a| a.0)),
                    flag(k.scope == Scope::Inherit),
                    flag(k.revoked),
                    opt(k.expires_at_ms),
                    flag(k.may_assert_end_user),
                    flag(k.may_assert_agent),
                    Val::Int(now),
                ]
            })
            .collect(),
    )
    .await;

    // Scope entries of every owner kind (column order: team, key, end user, agent).
    let mut servers = Vec::new();
    let mut toolsets = Vec::new();
    let mut add = |kind: usize, id: i64, org: i64, scope: &Scope| {
        if let Scope::Grants(g) = scope {
            for (s, f) in &g.servers {
                let mut row = owner_cols(kind, id);
                row.extend([Val::Int(org), Val::Int(s.0), json(f)]);
                servers.push(row);
            }
            for t in &g.toolsets {
                let mut row = owner_cols(kind, id);
                row.extend([Val::Int(org), Val::Int(t.0)]);
                toolsets.push(row);
            }
        }
    };
    rows.teams
        .iter()
        .for_each(|r| add(0, r.id.0, r.org.0, &r.scope));
    rows.keys
        .iter()
        .for_each(|r| add(1, r.id.0, r.org.0, &r.scope));
    rows.end_users
        .iter()
        .for_each(|r| add(2, r.id.0, r.org.0, &r.scope));
    rows.agents
        .iter()
        .for_each(|r| add(3, r.id.0, r.org.0, &r.scope));
    let owners = ["team_id", "key_id", "end_user_id", "agent_id"];
    let mut cols = owners.to_vec();
    cols.extend(["org_id", "server_id", "filter"]);
    insert(&mut tx, "scope_servers", &cols, servers).await;
    let mut cols = owners.to_vec();
    cols.extend(["org_id", "toolset_id"]);
    insert(&mut tx, "scope_toolsets", &cols, toolsets).await;

    sqlx::query::<Any>("UPDATE policy_meta SET revision = $1 WHERE id = 1")
        .bind(rows.revision as i64)
        .execute(&mut *tx)
        .await
        .expect("revision");
    if postgres {
        // Explicit ids leave identity sequences behind: move them past the seeded rows.
        for table in [
            "orgs",
            "servers",
            "teams",
            "agents",
            "keys",
            "end_users",
            "toolsets",
        ] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
            );
            tx.execute(sql.as_str()).await.expect("setval");
        }
    }
    tx.commit().await.expect("commit seed");
}
