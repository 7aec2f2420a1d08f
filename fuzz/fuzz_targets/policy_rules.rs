//! The policy language (custom roles, `PUT /v1/roles/{name}`): a role's rules parsed from JSON
//! and checked with `validate_rules`, then decided on for a principal holding them. A
//! validated role must keep the language's promises: manage and audit only vault-wide, reveal
//! levels only with detokenize; an item allowed is allowed by the coarse check too; a reveal
//! level above none only where detokenize is allowed; and rules survive a JSON round trip.
//!
//! Input: the JSON (an object `{"rules": [...]}` or a bare array), a NUL, a byte choosing the
//! built-in roles and whether the principal is disabled or untrained, then a data type name, a
//! NUL and a subject.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tijori_core::policy::{
    authorize, validate_rules, Action, Delete, Detokenize, Manage, ReadAudit, Reveal, RevealLevel,
    Role, Rule, Search, Tokenize,
};
use tijori_core::{Principal, PrincipalKind};
use tijori_fuzz::{split_at_byte, split_first};

fn rules_of(json: &[u8]) -> Option<Vec<Rule>> {
    #[derive(serde::Deserialize)]
    struct Body {
        rules: Vec<Rule>,
    }
    serde_json::from_slice::<Body>(json)
        .map(|b| b.rules)
        .or_else(|_| serde_json::from_slice::<Vec<Rule>>(json))
        .ok()
}

fn check_validated(rules: &[Rule]) {
    assert!((1..=64).contains(&rules.len()));
    for r in rules {
        assert!(!r.types.is_empty() && !r.operations.is_empty());
        for t in &r.types {
            assert!(
                t == "*" || tijori_types::DataType::parse(t).is_some(),
                "type {t:?}"
            );
        }
        let reveals = r.operations.contains(&Action::Detokenize);
        assert_eq!(
            reveals,
            r.reveal != RevealLevel::None,
            "reveal without detokenize"
        );
        if r.operations.contains(&Action::Manage) || r.operations.contains(&Action::Audit) {
            assert!(
                r.types == ["*"] && r.subject_prefix.is_none(),
                "scoped manage/audit"
            );
        }
        if let Some(p) = &r.subject_prefix {
            assert!(!p.is_empty() && p.len() <= 256);
        }
    }
}

macro_rules! coarse_covers_fine {
    ($op:ty, $action:expr, $p:expr, $ty:expr, $subject:expr) => {{
        let fine = $p
            .roles
            .iter()
            .flat_map(|r| r.rules().iter())
            .chain($p.custom_rules.iter())
            .any(|r| r.grants($action, Some($ty), $subject));
        match authorize::<$op>($p) {
            Ok(auth) => {
                assert!(!$p.disabled);
                assert_eq!(auth.allows($ty, $subject), fine);
                if let Some(s) = $subject {
                    if auth.allows_all_types(s) {
                        for t in tijori_types::DataType::ALL {
                            assert!(auth.allows(t.as_str(), Some(s)), "all types but {t}");
                        }
                    }
                }
            }
            // An item some rule allows is never refused by the coarse check, unless the
            // principal is disabled or (for reveals) untrained.
            Err(_) => assert!(!fine || $p.disabled || $p.training_lapsed),
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let (json, query) = split_at_byte(data, 0);
    let (flags, query) = split_first(query);
    let (ty, subject) = split_at_byte(query, 0);
    let ty = String::from_utf8_lossy(ty);
    let subject = String::from_utf8_lossy(subject);
    let subject = (!subject.is_empty()).then_some(subject.as_ref());

    let Some(rules) = rules_of(json) else { return };
    // Whatever was accepted prints and reads back the same.
    let text = serde_json::to_string(&rules).expect("rules serialize");
    assert_eq!(
        serde_json::from_str::<Vec<Rule>>(&text).ok().as_ref(),
        Some(&rules)
    );
    if validate_rules(&rules).is_err() {
        return;
    }
    check_validated(&rules);

    let roles: Vec<Role> = Role::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| flags & (1 << i) != 0)
        .map(|(_, r)| r)
        .collect();
    let p = Principal {
        id: "prn_fuzz".into(),
        name: "fuzz".into(),
        kind: PrincipalKind::Service,
        roles,
        created_at: 0,
        disabled: flags & 0x40 != 0,
        training_lapsed: flags & 0x80 != 0,
        custom_rules: Arc::from(rules),
    };
    coarse_covers_fine!(Tokenize, Action::Tokenize, &p, &ty, subject);
    coarse_covers_fine!(Detokenize, Action::Detokenize, &p, &ty, subject);
    coarse_covers_fine!(Search, Action::Search, &p, &ty, subject);
    coarse_covers_fine!(Delete, Action::Delete, &p, &ty, subject);
    coarse_covers_fine!(Manage, Action::Manage, &p, &ty, subject);
    coarse_covers_fine!(ReadAudit, Action::Audit, &p, &ty, subject);

    if let Ok(auth) = authorize::<Detokenize>(&p) {
        let reveal = auth.reveal_for(&ty, subject);
        assert_eq!(
            reveal > Reveal::None,
            auth.allows(&ty, subject),
            "reveal without a grant"
        );
    }
});
