//! `GET /downloads/{job_id}.{mp4|mov|webm}?expires=…&sig=…`: serves committed outputs to whoever
//! holds a valid signed URL, typed by their format, with single byte ranges so video players can
//! seek. An output that retention deleted answers 410 Gone.

use std::future::Future;
use std::io::SeekFrom;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::domain::job::OutputFormat;
use crate::media::output::{DownloadError, OutputStore};

/// Read size for streaming a file out.
const STREAM_CHUNK: usize = 64 * 1024;

/// Tells whether retention deleted a job's output (asked only when its file is missing).
pub type ExpiredLookup =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

#[derive(Clone)]
struct Downloads {
    store: Arc<OutputStore>,
    expired: Option<ExpiredLookup>,
}

/// The download route, to be merged into the server's HTTP router.
pub fn download_router(store: Arc<OutputStore>) -> Router {
    Router::new()
        .route("/downloads/{file}", get(serve_download))
        .with_state(Downloads {
            store,
            expired: None,
        })
}

/// [`download_router`] that answers 410 Gone for outputs `expired` says retention deleted.
pub fn download_router_with_expiry(store: Arc<OutputStore>, expired: ExpiredLookup) -> Router {
    Router::new()
        .route("/downloads/{file}", get(serve_download))
        .with_state(Downloads {
            store,
            expired: Some(expired),
        })
}

#[derive(Debug, Deserialize)]
struct SignedQuery {
    expires: Option<String>,
    sig: Option<String>,
}

/// The part of the file a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteRange {
    Whole,
    /// Inclusive bounds, both inside the file.
    Part {
        first: u64,
        last: u64,
    },
    Unsatisfiable,
}

async fn serve_download(
    State(Downloads { store, expired }): State<Downloads>,
    Path(file): Path<String>,
    Query(query): Query<SignedQuery>,
    headers: HeaderMap,
) -> Response {
    let Some((job_id, format)) = job_file_of(&file) else {
        return (StatusCode::BAD_REQUEST, "invalid download name").into_response();
    };
    let signed = query
        .expires
        .as_deref()
        .and_then(|text| text.parse::<i64>().ok())
        .zip(query.sig.as_deref());
    let verified = match signed {
        Some((expires, sig)) => store.verify(&job_id, expires, sig, Utc::now()),
        None => Err(DownloadError::MissingSignature),
    };
    if let Err(err) = verified {
        return (StatusCode::FORBIDDEN, err.to_string()).into_response();
    }

    let path = store.final_path(&job_id, format);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Some(expired) = expired {
                if expired(job_id).await {
                    return (StatusCode::GONE, "the output has expired and was deleted")
                        .into_response();
                }
            }
            return (StatusCode::NOT_FOUND, "no such output").into_response();
        }
        Err(err) => return read_failure(&path, err),
    };
    let len = match file.metadata().await {
        Ok(metadata) => metadata.len(),
        Err(err) => return read_failure(&path, err),
    };

    let range = byte_range(headers.get(header::RANGE), len);
    let (status, first, count) = match range {
        ByteRange::Whole => (StatusCode::OK, 0, len),
        ByteRange::Part { first, last } => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        ByteRange::Unsatisfiable => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                "requested range is outside the file",
            )
                .into_response()
        }
    };
    if first > 0 {
        if let Err(err) = file.seek(SeekFrom::Start(first)).await {
            return read_failure(&path, err);
        }
    }

    let body = Body::from_stream(ReaderStream::with_capacity(file.take(count), STREAM_CHUNK));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.mime_type()),
    );
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    if let ByteRange::Part { first, last } = range {
        if let Ok(value) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}")) {
            out.insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

fn read_failure(path: &std::path::Path, err: std::io::Error) -> Response {
    tracing::error!(path = %path.display(), error = %err, "cannot read an output for download");
    (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the output").into_response()
}

/// `<uuid>.<mp4|mov|webm>` with the UUID in lowercase hyphenated form (the only form job ids
/// take) and the extension in lowercase → the id and the output format.
fn job_file_of(file: &str) -> Option<(String, OutputFormat)> {
    let (stem, extension) = file.rsplit_once('.')?;
    let format = extension.parse::<OutputFormat>().ok()?;
    let id = uuid::Uuid::try_parse(stem)
        .ok()?
        .as_hyphenated()
        .to_string();
    (id == stem).then_some((id, format))
}

/// Reads one `Range: bytes=…` request against a file of `len` bytes. Forms this server does not
/// serve (other units, several ranges, malformed values) fall back to the whole file, which
/// RFC 9110 §14.2 allows.
fn byte_range(value: Option<&HeaderValue>, len: u64) -> ByteRange {
    let Some(text) = value.and_then(|v| v.to_str().ok()) else {
        return ByteRange::Whole;
    };
    let text = text.trim();
    let Some(spec) = text
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .and_then(|_| text.get(6..))
    else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |text: &str| -> Option<u64> {
        if text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse().ok()
        } else {
            None
        }
    };
    if first.is_empty() {
        // `-n`: the last n bytes.
        return match number(last) {
            None => ByteRange::Whole,
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if len == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
        };
    }
    let Some(first) = number(first) else {
        return ByteRange::Whole;
    };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(last) if last >= first => last,
            _ => return ByteRange::Whole,
        }
    };
    if first >= len {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part {
        first,
        last: last.min(len - 1),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::to_bytes;
    use axum::http::{Method, Request};
    use chrono::TimeZone;
    use tower::ServiceExt;

    use super::*;
    use crate::media::output::OutputConfig;

    const JOB: &str = "0190f3a4-8c2e-7b1d-9f00-123456789abc";
    const OTHER_JOB: &str = "0190f3a4-8c2e-7b1d-9f00-0000000000ff";

    struct Fixture {
        _tmp: tempfile::TempDir,
        store: Arc<OutputStore>,
        content: Vec<u8>,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().expect("tmp");
        let config = OutputConfig {
            dir: tmp.path().join("outputs"),
            url_ttl: Duration::from_secs(600),
            ..OutputConfig::default()
        };
        let store = OutputStore::new(&config, "http://127.0.0.1:50051".into(), b"key".to_vec())
            .expect("store");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(store.temp_path(JOB, OutputFormat::Mp4), &content).expect("write");
        store.commit(JOB, OutputFormat::Mp4).expect("commit");
        Fixture {
            _tmp: tmp,
            store: Arc::new(store),
            content,
        }
    }

    /// The path and query of a signed URL to an mp4 issued now.
    fn signed(store: &OutputStore, job_id: &str) -> String {
        signed_as(store, job_id, OutputFormat::Mp4)
    }

    fn signed_as(store: &OutputStore, job_id: &str, format: OutputFormat) -> String {
        let url = store.download_url(job_id, format, Utc::now());
        url.strip_prefix("http://127.0.0.1:50051")
            .expect("base")
            .to_owned()
    }

    async fn get(
        store: &Arc<OutputStore>,
        uri: &str,
        range: Option<&str>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        send(store, Method::GET, uri, range).await
    }

    async fn send(
        store: &Arc<OutputStore>,
        method: Method,
        uri: &str,
        range: Option<&str>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(range) = range {
            request = request.header(header::RANGE, range);
        }
        let response = download_router(Arc::clone(store))
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, headers, body.to_vec())
    }

    fn header_text(headers: &HeaderMap, name: header::HeaderName) -> &str {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn a_signed_url_downloads_the_whole_file() {
        let f = fixture();
        let (status, headers, body) = get(&f.store, &signed(&f.store, JOB), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header_text(&headers, header::CONTENT_TYPE), "video/mp4");
        assert_eq!(header_text(&headers, header::CONTENT_LENGTH), "200000");
        assert_eq!(header_text(&headers, header::ACCEPT_RANGES), "bytes");
        assert_eq!(body, f.content);
    }

    #[tokio::test]
    async fn ranges_return_the_right_slice() {
        let f = fixture();
        let uri = signed(&f.store, JOB);
        let cases = [
            ("bytes=100-199", 100, 199),
            ("bytes=199990-", 199_990, 199_999),
            ("bytes=-10", 199_990, 199_999),
            ("bytes=5-999999999", 5, 199_999),
            ("bytes=0-0", 0, 0),
        ];
        for (range, first, last) in cases {
            let (status, headers, body) = get(&f.store, &uri, Some(range)).await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
            assert_eq!(
                header_text(&headers, header::CONTENT_RANGE),
                format!("bytes {first}-{last}/200000"),
                "{range}"
            );
            let count = last - first + 1;
            assert_eq!(
                header_text(&headers, header::CONTENT_LENGTH),
                count.to_string()
            );
            assert_eq!(body, &f.content[first..=last], "{range}");
        }
    }

    #[tokio::test]
    async fn unsatisfiable_ranges_get_416_and_unsupported_ones_the_whole_file() {
        let f = fixture();
        let uri = signed(&f.store, JOB);
        for range in ["bytes=200000-", "bytes=300000-300001", "bytes=-0"] {
            let (status, headers, _) = get(&f.store, &uri, Some(range)).await;
            assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
            assert_eq!(
                header_text(&headers, header::CONTENT_RANGE),
                "bytes */200000"
            );
        }
        for range in ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=x-"] {
            let (status, _, body) = get(&f.store, &uri, Some(range)).await;
            assert_eq!(status, StatusCode::OK, "{range}");
            assert_eq!(body.len(), f.content.len(), "{range}");
        }
    }

    #[tokio::test]
    async fn head_reports_the_size_without_a_body() {
        let f = fixture();
        let (status, headers, body) =
            send(&f.store, Method::HEAD, &signed(&f.store, JOB), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header_text(&headers, header::CONTENT_LENGTH), "200000");
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn expired_links_are_forbidden() {
        let f = fixture();
        let issued = Utc.timestamp_opt(1_000_000, 0).single().expect("time");
        let url = f.store.download_url(JOB, OutputFormat::Mp4, issued);
        let uri = url.strip_prefix("http://127.0.0.1:50051").expect("base");
        let (status, _, body) = get(&f.store, uri, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(String::from_utf8_lossy(&body), "download link has expired");
    }

    #[tokio::test]
    async fn tampered_or_foreign_signatures_are_forbidden() {
        let f = fixture();
        let uri = signed(&f.store, JOB);
        let (prefix, sig) = uri.split_once("&sig=").expect("sig");
        let mut flipped = sig.to_owned();
        let replacement = if flipped.starts_with('A') { "B" } else { "A" };
        flipped.replace_range(0..1, replacement);
        let tampered = format!("{prefix}&sig={flipped}");
        let (status, _, body) = get(&f.store, &tampered, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            String::from_utf8_lossy(&body),
            "download link has a bad signature"
        );

        // A later expiry with the old signature.
        let (path, rest) = uri.split_once("?expires=").expect("expires");
        let (expires, _) = rest.split_once('&').expect("amp");
        let later: i64 = expires.parse::<i64>().expect("int") + 86_400;
        let extended = format!("{path}?expires={later}&sig={sig}");
        assert_eq!(
            get(&f.store, &extended, None).await.0,
            StatusCode::FORBIDDEN
        );

        // Another job's valid signature on this job's file.
        let foreign = signed(&f.store, OTHER_JOB);
        let (_, foreign_query) = foreign.split_once('?').expect("query");
        let swapped = format!("/downloads/{JOB}.mp4?{foreign_query}");
        assert_eq!(get(&f.store, &swapped, None).await.0, StatusCode::FORBIDDEN);

        // No signature at all.
        let bare = format!("/downloads/{JOB}.mp4");
        let (status, _, body) = get(&f.store, &bare, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(String::from_utf8_lossy(&body).contains("missing"));
    }

    #[tokio::test]
    async fn names_other_than_a_job_video_are_refused() {
        let f = fixture();
        let uri = signed(&f.store, JOB);
        let (_, query) = uri.split_once('?').expect("query");
        for name in [
            "..%2F..%2Fetc%2Fpasswd",
            "..%2F0190f3a4-8c2e-7b1d-9f00-123456789abc.mp4",
            ".0190f3a4-8c2e-7b1d-9f00-123456789abc.mp4.part",
            "0190F3A4-8C2E-7B1D-9F00-123456789ABC.mp4",
            "0190f3a48c2e7b1d9f00123456789abc.mp4",
            "0190f3a4-8c2e-7b1d-9f00-123456789abc.mkv",
            "0190f3a4-8c2e-7b1d-9f00-123456789abc.MP4",
            "0190f3a4-8c2e-7b1d-9f00-123456789abc.webm.part",
            "0190f3a4-8c2e-7b1d-9f00-123456789abc",
        ] {
            let (status, _, _) = get(&f.store, &format!("/downloads/{name}?{query}"), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        }
        let (status, _, _) = get(&f.store, &format!("/downloads/../x?{query}"), None).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
            "{status}"
        );
    }

    #[tokio::test]
    async fn expired_outputs_are_gone() {
        let f = fixture();
        let uri = signed(&f.store, JOB);
        let other = signed(&f.store, OTHER_JOB);
        std::fs::remove_file(f.store.final_path(JOB, OutputFormat::Mp4))
            .expect("retention deleted it");
        let lookup: ExpiredLookup =
            Arc::new(|job_id: String| Box::pin(async move { job_id == JOB }));
        let router = || download_router_with_expiry(Arc::clone(&f.store), Arc::clone(&lookup));
        let call = |uri: String| {
            let router = router();
            async move {
                let response = router
                    .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
                    .await
                    .expect("infallible");
                let status = response.status();
                let body = to_bytes(response.into_body(), 1 << 16).await.expect("body");
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        let (status, body) = call(uri).await;
        assert_eq!(status, StatusCode::GONE);
        assert!(body.contains("expired"), "{body}");
        // Never produced (not expired): still 404.
        assert_eq!(call(other).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn each_format_is_served_under_its_name_and_type() {
        let f = fixture();
        for (format, mime) in [
            (OutputFormat::Mov, "video/quicktime"),
            (OutputFormat::Webm, "video/webm"),
        ] {
            let uri = signed_as(&f.store, OTHER_JOB, format);
            assert_eq!(get(&f.store, &uri, None).await.0, StatusCode::NOT_FOUND);
            let body = format!("a {format} file").into_bytes();
            std::fs::write(f.store.temp_path(OTHER_JOB, format), &body).expect("write");
            f.store.commit(OTHER_JOB, format).expect("commit");
            let (status, headers, got) = get(&f.store, &uri, None).await;
            assert_eq!(status, StatusCode::OK, "{format}");
            assert_eq!(header_text(&headers, header::CONTENT_TYPE), mime);
            assert_eq!(got, body);
        }
        // The mp4 of JOB is not reachable under another extension.
        let webm = signed_as(&f.store, JOB, OutputFormat::Webm);
        assert_eq!(get(&f.store, &webm, None).await.0, StatusCode::NOT_FOUND);
        assert_eq!(
            job_file_of(&format!("{JOB}.webm")),
            Some((JOB.to_owned(), OutputFormat::Webm))
        );
    }

    #[tokio::test]
    async fn a_valid_link_to_a_missing_file_is_404() {
        let f = fixture();
        let (status, _, body) = get(&f.store, &signed(&f.store, OTHER_JOB), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(String::from_utf8_lossy(&body), "no such output");
    }

    #[test]
    fn byte_range_parsing() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(byte_range(None, 10), ByteRange::Whole);
        assert_eq!(
            byte_range(Some(&h("bytes=2-4")), 10),
            ByteRange::Part { first: 2, last: 4 }
        );
        assert_eq!(
            byte_range(Some(&h("BYTES=2-")), 10),
            ByteRange::Part { first: 2, last: 9 }
        );
        assert_eq!(
            byte_range(Some(&h("bytes=-20")), 10),
            ByteRange::Part { first: 0, last: 9 }
        );
        assert_eq!(
            byte_range(Some(&h("bytes=-1")), 0),
            ByteRange::Unsatisfiable
        );
        assert_eq!(
            byte_range(Some(&h("bytes=0-")), 0),
            ByteRange::Unsatisfiable
        );
        assert_eq!(byte_range(Some(&h("bytes=+1-2")), 10), ByteRange::Whole);
        assert_eq!(byte_range(Some(&h("bytes=1")), 10), ByteRange::Whole);
    }
}
