//! W3C trace context (`traceparent`) to and from OpenTelemetry contexts: how a job carries the
//! trace of the request that created it across the database to whichever replica renders it.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";

/// The `traceparent` of `cx`'s span, when it has a valid one.
pub fn traceparent_of(cx: &Context) -> Option<String> {
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The `traceparent` of the current tracing span (the request span while a request is being
/// handled), or `None` when no span is exported (no OTLP endpoint, or outside any span).
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current().context())
}

/// A remote parent context from a stored or received `traceparent`; `None` when it is not a
/// valid W3C value (wrong version, all-zero ids, bad hex, wrong length).
pub fn context_from_traceparent(traceparent: &str) -> Option<Context> {
    if !is_w3c_traceparent(traceparent.trim()) {
        return None;
    }
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.trim().to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// `version-traceid-spanid-flags` with exactly 2, 32, 16 and 2 lowercase hex digits, and not
/// the forbidden version `ff` (the propagator alone accepts shorter ids).
fn is_w3c_traceparent(value: &str) -> bool {
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let parts: Vec<&str> = value.split('-').collect();
    match parts.as_slice() {
        [version, trace_id, span_id, flags] => {
            lower_hex(version, 2)
                && *version != "ff"
                && lower_hex(trace_id, 32)
                && lower_hex(span_id, 16)
                && lower_hex(flags, 2)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_a_w3c_traceparent() {
        let cx = context_from_traceparent(SAMPLE).expect("valid traceparent");
        let span = cx.span();
        let sc = span.span_context();
        assert_eq!(
            sc.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex")
        );
        assert_eq!(
            sc.span_id(),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex")
        );
        assert!(sc.is_sampled());
        assert!(sc.is_remote());
    }

    #[test]
    fn injects_what_it_parsed() {
        let cx = context_from_traceparent(SAMPLE).expect("valid traceparent");
        assert_eq!(traceparent_of(&cx).as_deref(), Some(SAMPLE));
        let unsampled = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").expect("hex"),
            SpanId::from_hex("b7ad6b7169203331").expect("hex"),
            TraceFlags::default(),
            true,
            TraceState::default(),
        ));
        assert_eq!(
            traceparent_of(&unsampled).as_deref(),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
        );
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ] {
            assert!(context_from_traceparent(bad).is_none(), "{bad:?} accepted");
        }
        assert_eq!(traceparent_of(&Context::new()), None);
    }

    #[test]
    fn no_current_traceparent_without_an_exporting_subscriber() {
        let span = tracing::info_span!("outside");
        let _entered = span.enter();
        assert_eq!(current_traceparent(), None);
    }
}
