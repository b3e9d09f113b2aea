//! Two replicas on one database (MariaDB and PostgreSQL when configured, else SQLite),
//! with no Redis and with the Redis Cluster: a code accepted on one is refused on the
//! other, a login started on one finishes on the other, and wrong codes on both add up.

use std::sync::Arc;

use saga_account::domain::clock::ManualClock;
use serde_json::json;

use super::*;
use crate::{helpers::*, redis_harness::RedisTarget, server_tests};

server_tests!(a_code_is_accepted_once_across_replicas);

async fn a_code_is_accepted_once_across_replicas(backend: Backend) {
    let mut targets = vec![None];
    targets.extend(RedisTarget::cluster().map(Some));
    for redis in targets {
        let clock = Arc::new(ManualClock::starting_now());
        let database = TestDatabase::fresh(&backend).await;
        let configure = |s: &mut saga_account::config::Settings| {
            if let Some(redis) = &redis {
                redis.apply(s);
            }
        };
        let a = spawn_at(&database, &clock, None, configure).await;
        let b = spawn_at(&database, &clock, None, configure).await;
        let e = enrolled(&a, &clock, 20).await;
        let from = format!("198.51.100.{}", 20 + u8::from(redis.is_some()));
        // Started on A, finished on B.
        let token = login_for_token(&a, &e.email, &from).await;
        let now = code(&e.secret, &clock, 0);
        let response = second_step(&b, &from, json!({"mfa_token": token, "code": now})).await;
        assert_eq!(response.status(), 200, "redis: {redis:?}");
        // The same code, presented on A a moment later, is a replay.
        let token = login_for_token(&a, &e.email, &from).await;
        let replay = second_step(&a, &from, json!({"mfa_token": token, "code": now})).await;
        assert_msg(replay, 401, "invalid code").await;
        // Two replicas racing with one recovery code: exactly one signs in.
        let (ta, tb) = (
            login_for_token(&a, &e.email, &from).await,
            login_for_token(&b, &e.email, &from).await,
        );
        let code = &e.recovery_codes[0];
        let (ra, rb) = tokio::join!(
            second_step(&a, &from, json!({"mfa_token": ta, "recovery_code": code})),
            second_step(&b, &from, json!({"mfa_token": tb, "recovery_code": code})),
        );
        let statuses = [ra.status().as_u16(), rb.status().as_u16()];
        assert!(
            statuses.contains(&200) && statuses.contains(&401),
            "{statuses:?}"
        );
        // Wrong codes on both replicas count toward one limit only where the counts are
        // shared (Redis); without it, each replica counts for itself. From an address of
        // their own, so that only these count.
        let from = format!("203.0.113.{}", 20 + u8::from(redis.is_some()));
        for n in 0..5 {
            let app = if n % 2 == 0 { &a } else { &b };
            let token = login_for_token(app, &e.email, &from).await;
            let response = second_step(
                app,
                &from,
                json!({"mfa_token": token, "code": format!("{n:06}")}),
            )
            .await;
            assert_msg(response, 401, "invalid code").await;
        }
        let locked_on_a = login_from(&a, &e.email, PASSWORD, &from).await.status() == 429;
        let locked_on_b = login_from(&b, &e.email, PASSWORD, &from).await.status() == 429;
        if redis.is_some() {
            assert!(locked_on_a && locked_on_b, "shared through Redis");
        } else {
            assert!(
                !locked_on_a && !locked_on_b,
                "3 and 2 failures, each below its replica's limit"
            );
        }
    }
}
