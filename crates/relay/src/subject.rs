//! Which NATS subject a fact is published under.
//!
//! Subjects exist for routing (a consumer subscribes to `marquee.facts.event.>` for every event),
//! not for identity: the payload and the `Marquee-Stream` header carry the exact stream name, so
//! sanitizing may map two odd stream names to one subject without losing anything.

use uuid::Uuid;

/// The subject for a fact of `stream`: `<prefix>.<aggregate>.<id>`.
///
/// A stream ending in `-<uuid>` splits there, so `event-<uuid>` becomes
/// `<prefix>.event.<uuid>` and `ticket-type-<uuid>` becomes `<prefix>.ticket-type.<uuid>`.
/// Any other stream splits at its first `-`; one without a `-` gets the id `_`, so every
/// subject has the same depth and `<prefix>.<aggregate>.*` matches a whole aggregate.
///
/// Each token keeps ASCII letters, digits, `-` and `_`; anything else (`.`, `*`, `>`,
/// whitespace, non-ASCII) becomes `_`, and an empty token becomes `_`, because those would
/// change the subject's shape or make it invalid.
pub fn subject_for(prefix: &str, stream: &str) -> String {
    let (aggregate, id) = split_stream(stream);
    format!("{prefix}.{}.{}", token(aggregate), token(id))
}

/// Checks that `prefix` is one or more valid, wildcard-free subject tokens, e.g.
/// `marquee.facts`. The error says what is wrong.
pub fn validate_subject_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("subject prefix must not be empty".to_owned());
    }
    for part in prefix.split('.') {
        if part.is_empty() || part == "*" || part == ">" || part.contains(['*', '>']) {
            return Err(format!(
                "subject prefix {prefix:?} must be dot-separated non-empty tokens without wildcards"
            ));
        }
        if part.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "subject prefix {prefix:?} must not contain whitespace"
            ));
        }
    }
    Ok(())
}

/// Splits a stream name into aggregate and id (see [`subject_for`]).
fn split_stream(stream: &str) -> (&str, &str) {
    const UUID_LEN: usize = 36;
    if stream.len() > UUID_LEN + 1 && stream.is_char_boundary(stream.len() - UUID_LEN - 1) {
        let (head, tail) = stream.split_at(stream.len() - UUID_LEN - 1);
        if let Some(uuid) = tail.strip_prefix('-')
            && Uuid::try_parse(uuid).is_ok()
        {
            return (head, uuid);
        }
    }
    stream.split_once('-').unwrap_or((stream, ""))
}

/// One valid subject token.
fn token(raw: &str) -> String {
    if raw.is_empty() {
        return "_".to_owned();
    }
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6";

    #[test]
    fn an_event_stream_maps_to_aggregate_and_id() {
        assert_eq!(
            subject_for("marquee.facts", &format!("event-{ID}")),
            format!("marquee.facts.event.{ID}")
        );
    }

    #[test]
    fn an_aggregate_with_a_dash_in_its_name_splits_before_the_uuid() {
        assert_eq!(
            subject_for("marquee.facts", &format!("ticket-type-{ID}")),
            format!("marquee.facts.ticket-type.{ID}")
        );
    }

    #[test]
    fn a_stream_without_a_uuid_splits_at_its_first_dash() {
        assert_eq!(
            subject_for("p", "order-2024-17"),
            "p.order.2024-17".to_owned()
        );
    }

    #[test]
    fn a_stream_without_a_dash_gets_a_placeholder_id() {
        assert_eq!(subject_for("p", "settings"), "p.settings._");
        assert_eq!(subject_for("p", "settings-"), "p.settings._");
    }

    #[test]
    fn dots_wildcards_spaces_and_non_ascii_become_underscores() {
        assert_eq!(subject_for("p", "a.b-c*d>e f"), "p.a_b.c_d_e_f");
        assert_eq!(subject_for("p", "café-1"), "p.caf_.1");
        assert_eq!(subject_for("p", "-x"), "p._.x");
        assert_eq!(subject_for("p", "line\nbreak-\t"), "p.line_break._");
    }

    #[test]
    fn every_subject_is_the_prefix_and_two_valid_tokens() {
        for stream in ["", "-", "--", "a.b.c", "x-y.z", "é", &format!("event-{ID}")] {
            let subject = subject_for("marquee.facts", stream);
            let tokens: Vec<_> = subject.split('.').collect();
            assert_eq!(tokens.len(), 4, "{stream:?} -> {subject}");
            assert!(
                tokens.iter().all(|t| !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    || *t == "marquee"
                    || *t == "facts"),
                "{stream:?} -> {subject}"
            );
        }
    }

    #[test]
    fn prefixes_with_wildcards_or_empty_tokens_are_rejected() {
        assert!(validate_subject_prefix("marquee.facts").is_ok());
        assert!(validate_subject_prefix("marquee_test_abc.facts").is_ok());
        for bad in ["", ".", "a..b", "a.", ".a", "a.*", "a.>", "a b", "a.b*"] {
            assert!(validate_subject_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
