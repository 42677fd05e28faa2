//! The OpenAPI document of the JSON API, generated from the handlers and
//! their types so that it cannot drift from the code. A committed copy in
//! `docs/openapi.json` is checked against it by the tests.

use utoipa::OpenApi;

use crate::http::{api, error, ops};

#[derive(OpenApi)]
#[openapi(
    info(title = "calsync", description = "Calendar sync service: connections, calendars and events of the caller, their own settings and API tokens."),
    paths(
        api::providers::google_authorize, api::providers::google_callback,
        api::providers::microsoft_authorize, api::providers::microsoft_callback,
        api::providers::caldav_connect, api::providers::ics_subscribe,
        api::connections::list, api::connections::disconnect,
        api::calendars::list, api::calendars::patch, api::calendars::decide_removals,
        api::sync::start,
        api::events::upcoming, api::events::range, api::stream::stream,
        api::me::get, api::me::patch,
        api::tokens::list, api::tokens::create, api::tokens::revoke,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API token from `calsync token create`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "calsync_session",
                "the browser session; writes also need X-CSRF-Token = the calsync_csrf cookie",
            ))),
        );
    }
}

/// The document as pretty JSON, with a trailing newline.
pub fn document() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}
