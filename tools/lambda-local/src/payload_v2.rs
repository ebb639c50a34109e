//! API Gateway HTTP API payload format 2.0: the event built from an HTTP request, and the
//! HTTP response built from what the function returned.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use crate::clock::{epoch_ms, request_time};

/// The API id reported in `requestContext.apiId`.
pub(crate) const API_ID: &str = "local";

/// An HTTP request as the HTTP front received and routed it.
#[derive(Debug)]
pub(crate) struct HttpRequest<'a> {
    pub(crate) method: &'a str,
    /// The path as sent (not decoded).
    pub(crate) path: &'a str,
    /// The query string as sent, without `?`.
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
    pub(crate) source_ip: IpAddr,
    pub(crate) port: u16,
    pub(crate) protocol: &'a str,
    /// The matched route key, e.g. `POST /tickets/{id}`.
    pub(crate) route_key: &'a str,
    pub(crate) path_parameters: &'a BTreeMap<String, String>,
    pub(crate) request_id: &'a str,
    pub(crate) trace_id: &'a str,
    pub(crate) account_id: &'a str,
    pub(crate) at: SystemTime,
}

/// Builds the payload 2.0 event.
pub(crate) fn event(request: &HttpRequest<'_>) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in request.headers.keys() {
        let values = request
            .headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        if name == header::COOKIE {
            cookies.extend(values.flat_map(|value| {
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|cookie| !cookie.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            }));
        } else {
            let joined = values.collect::<Vec<_>>().join(",");
            headers.insert(name.as_str().to_owned(), Value::String(joined));
        }
    }
    let forwarded_for = match headers.get("x-forwarded-for").and_then(Value::as_str) {
        Some(previous) => format!("{previous}, {}", request.source_ip),
        None => request.source_ip.to_string(),
    };
    headers.insert("x-forwarded-for".into(), forwarded_for.into());
    headers.insert("x-forwarded-port".into(), request.port.to_string().into());
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers
        .entry("x-amzn-trace-id")
        .or_insert_with(|| request.trace_id.into());
    let user_agent = headers
        .get("user-agent")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let domain = headers
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("localhost")
        .to_owned();
    let domain_prefix = domain.split('.').next().unwrap_or_default().to_owned();

    let mut event = json!({
        "version": "2.0",
        "routeKey": request.route_key,
        "rawPath": request.path,
        "rawQueryString": request.query.unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": request.account_id,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain_prefix,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip.to_string(),
                "userAgent": user_agent,
            },
            "requestId": request.request_id,
            "routeKey": request.route_key,
            "stage": "$default",
            "time": request_time(request.at),
            "timeEpoch": epoch_ms(request.at),
        },
        "isBase64Encoded": false,
    });
    let Some(object) = event.as_object_mut() else {
        return event;
    };
    if !cookies.is_empty() {
        object.insert("cookies".into(), json!(cookies));
    }
    let query = query_parameters(request.query);
    if !query.is_empty() {
        object.insert("queryStringParameters".into(), Value::Object(query));
    }
    if !request.path_parameters.is_empty() {
        object.insert("pathParameters".into(), json!(request.path_parameters));
    }
    if !request.body.is_empty() {
        let content_type = request
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        match std::str::from_utf8(request.body) {
            Ok(text) if is_textual(content_type) => {
                object.insert("body".into(), text.into());
            }
            _ => {
                object.insert("body".into(), BASE64.encode(request.body).into());
                object.insert("isBase64Encoded".into(), true.into());
            }
        }
    }
    event
}

/// Whether API Gateway passes a body of this content type as text.
fn is_textual(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("/json")
        || essence.ends_with("+json")
        || essence.ends_with("/xml")
        || essence.ends_with("+xml")
        || essence == "application/javascript"
        || essence == "application/x-www-form-urlencoded"
}

/// `queryStringParameters`: decoded, repeated keys joined with commas.
fn query_parameters(query: Option<&str>) -> Map<String, Value> {
    let mut parameters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        parameters
            .entry(decode(key))
            .or_default()
            .push(decode(value));
    }
    parameters
        .into_iter()
        .map(|(key, values)| (key, Value::String(values.join(","))))
        .collect()
}

/// A function response API Gateway would refuse (it answers 500).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed Lambda proxy response: {0}")]
pub(crate) struct MalformedResponse(pub(crate) String);

/// Turns the function's output into the HTTP response, as API Gateway does: a JSON object
/// with `statusCode` is a structured response; any other JSON is a 200 `application/json`
/// body.
pub(crate) fn response(output: &[u8]) -> Result<Response, MalformedResponse> {
    let value: Value = serde_json::from_slice(output)
        .map_err(|error| MalformedResponse(format!("not JSON: {error}")))?;
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        let mut response = Response::new(Body::from(output.to_vec()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    };
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| MalformedResponse("statusCode is not an HTTP status".into()))?;
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(body)) => {
            if object.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
                BASE64
                    .decode(body)
                    .map_err(|_| MalformedResponse("body is not valid base64".into()))?
            } else {
                body.clone().into_bytes()
            }
        }
        Some(_) => return Err(MalformedResponse("body is not a string".into())),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(MalformedResponse(format!("header {name} is not a string"))),
                };
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| MalformedResponse(format!("bad header name {name}")))?;
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| MalformedResponse(format!("bad value for header {name}")))?;
                headers.insert(name, value);
            }
        }
        Some(_) => return Err(MalformedResponse("headers is not an object".into())),
    }
    match object.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for cookie in cookies {
                let cookie = cookie
                    .as_str()
                    .and_then(|c| HeaderValue::from_str(c).ok())
                    .ok_or_else(|| MalformedResponse("bad cookie".into()))?;
                headers.append(header::SET_COOKIE, cookie);
            }
        }
        Some(_) => return Err(MalformedResponse("cookies is not an array".into())),
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn request<'a>(
        headers: &'a HeaderMap,
        body: &'a [u8],
        params: &'a BTreeMap<String, String>,
    ) -> HttpRequest<'a> {
        HttpRequest {
            method: "POST",
            path: "/t/a%20b",
            query: Some("x=1&x=2&y=%C3%A9&flag"),
            headers,
            body,
            source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            protocol: "HTTP/1.1",
            route_key: "POST /t/{id}",
            path_parameters: params,
            request_id: "req",
            trace_id: "Root=1-0-0",
            account_id: "123456789012",
            at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn builds_a_real_shaped_event() {
        let mut headers = HeaderMap::new();
        headers.append("Cookie", HeaderValue::from_static("a=1; b=2"));
        headers.append("X-Multi", HeaderValue::from_static("one"));
        headers.append("X-Multi", HeaderValue::from_static("two"));
        headers.append("content-type", HeaderValue::from_static("application/json"));
        let params = BTreeMap::from([("id".to_owned(), "a b".to_owned())]);
        let event = event(&request(&headers, br#"{"k":"v"}"#, &params));
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["headers"]["x-multi"], "one,two");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["queryStringParameters"]["x"], "1,2");
        assert_eq!(event["queryStringParameters"]["y"], "é");
        assert_eq!(event["queryStringParameters"]["flag"], "");
        assert_eq!(event["pathParameters"]["id"], "a b");
        assert_eq!(event["body"], r#"{"k":"v"}"#);
        assert_eq!(event["isBase64Encoded"], false);
        assert_eq!(
            event["requestContext"]["time"],
            "01/Jan/1970:00:00:00 +0000"
        );
    }

    #[test]
    fn binary_bodies_are_base64() {
        let mut headers = HeaderMap::new();
        headers.append("content-type", HeaderValue::from_static("image/png"));
        let params = BTreeMap::new();
        let event = event(&request(&headers, b"\x89PNG", &params));
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], BASE64.encode(b"\x89PNG"));
        assert!(event.get("pathParameters").is_none());
    }

    #[test]
    fn converts_responses() {
        let structured = br#"{"statusCode":201,"headers":{"x-a":"1","x-n":2},
            "cookies":["c=1","d=2"],"body":"aGk=","isBase64Encoded":true}"#;
        let response = response(structured).expect("valid");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["x-n"], "2");
        assert_eq!(
            response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .count(),
            2
        );
        let plain = super::response(br#"{"answer":42}"#).expect("valid");
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(plain.headers()[header::CONTENT_TYPE], "application/json");
        for bad in [
            &br#"{"statusCode":"x"}"#[..],
            br#"{"statusCode":99999}"#,
            br#"{"statusCode":200,"body":1}"#,
            br#"{"statusCode":200,"headers":[]}"#,
            br#"{"statusCode":200,"body":"!","isBase64Encoded":true}"#,
            b"not json",
        ] {
            assert!(super::response(bad).is_err());
        }
    }
}
