//! Matching an HTTP API request to a function's routes: by route key, else by method and
//! path (stage-independent, `{name}` segments match any value).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;

use crate::{Route, TaskError};

/// The route `request` asked for, or the 404/405 error that says why there is none.
pub(crate) fn find<E>(
    routes: &'static [Route<E>],
    request: &ApiGatewayV2httpRequest,
) -> Result<&'static Route<E>, TaskError> {
    if let Some(key) = request.route_key.as_deref()
        && let Some(route) = routes
            .iter()
            .find(|r| key.split_once(' ') == Some((r.method, r.path)))
    {
        return Ok(route);
    }
    let method = request.request_context.http.method.as_str();
    let path = path_of(request);
    let on_path: Vec<&'static Route<E>> = routes
        .iter()
        .filter(|r| path_matches(r.path, &path))
        .collect();
    if let Some(route) = on_path.iter().find(|r| r.method == method) {
        return Ok(route);
    }
    if on_path.is_empty() {
        let known: Vec<String> = routes.iter().map(Route::key).collect();
        return Err(TaskError::RouteNotFound(format!(
            "no route for {method} {path}; this function serves {}",
            known.join(", ")
        )));
    }
    Err(TaskError::MethodNotAllowed {
        message: format!(
            "method {method} is not allowed on {path}; use {}",
            allowed(&on_path).join(" or ")
        ),
        allow: allowed(&on_path).join(", "),
    })
}

fn allowed<E>(routes: &[&'static Route<E>]) -> Vec<&'static str> {
    routes.iter().map(|r| r.method).collect()
}

/// The request path without the stage in front (API Gateway adds it for named stages).
fn path_of(request: &ApiGatewayV2httpRequest) -> String {
    let path = request
        .raw_path
        .as_deref()
        .or(request.request_context.http.path.as_deref())
        .unwrap_or("/");
    let stage = request
        .request_context
        .stage
        .as_deref()
        .filter(|s| *s != "$default" && !s.is_empty());
    let path = stage
        .and_then(|stage| path.strip_prefix('/')?.strip_prefix(stage))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .unwrap_or(path);
    match path.trim_end_matches('/') {
        "" => "/".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

fn path_matches(template: &str, path: &str) -> bool {
    let mut want = template.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(_)) if w.starts_with('{') && w.ends_with("+}") => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &[Route<u8>] = &[
        Route::post("/summaries", 1),
        Route {
            method: "GET",
            path: "/jobs/{id}",
            endpoint: 2,
        },
    ];

    fn request(
        route_key: Option<&str>,
        method: &str,
        path: &str,
        stage: &str,
    ) -> ApiGatewayV2httpRequest {
        serde_json::from_value(serde_json::json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "requestContext": {"http": {"method": method, "path": path}, "stage": stage},
            "isBase64Encoded": false
        }))
        .unwrap()
    }

    #[test]
    fn matches_by_route_key_then_by_path() {
        let found = |r| find(ROUTES, &r).map(|r| r.endpoint);
        assert_eq!(
            found(request(
                Some("POST /summaries"),
                "POST",
                "/prod/summaries",
                "prod"
            )),
            Ok(1)
        );
        assert_eq!(
            found(request(Some("$default"), "POST", "/summaries/", "$default")),
            Ok(1)
        );
        assert_eq!(
            found(request(None, "POST", "/prod/summaries", "prod")),
            Ok(1)
        );
        assert_eq!(found(request(None, "GET", "/jobs/abc", "$default")), Ok(2));
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for path in ["/x/summaries", "/summaries/x", "/jobs", "/jobs//", "/"] {
            let err = find(ROUTES, &request(None, "POST", path, "$default")).unwrap_err();
            assert_eq!(err.http_status(), 404, "{path}");
        }
        let err = find(ROUTES, &request(None, "GET", "/summaries", "$default")).unwrap_err();
        assert_eq!(err.http_status(), 405);
        assert!(err.to_string().contains("use POST"), "{err}");
    }
}
