//! Files served whole: a leave request's attachments (`/files/<File id>`) and invoices as
//! PDF (`/invoices/<Invoice id>.pdf`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, Peer, error_response, read_unit, status_of};
use crate::billing::pdf::PdfFonts;
use crate::error::AppError;
use crate::files::FileStore;
use crate::graphql::support::{NodeType, expect_global_id};

/// A stored file (`/files/<File id>`), for the requester of the leave it belongs to and
/// the tenant's managers and admins. Anything else, including a file of another tenant, is
/// a 404: whether a file exists is not told to those who may not have it.
pub(super) async fn file(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let found = async {
        let (db, actor) = read_unit(&state, &headers, peer).await?;
        let not_found = || AppError::NotFound { what: "file" };
        let id = expect_global_id("id", &async_graphql::ID(id), NodeType::File).map_err(|_| not_found())?;
        let file = {
            let mut conn = db.conn().await?;
            crate::leave::visible_file(&mut conn, &actor, id).await?
        };
        db.commit().await?;
        file.ok_or_else(not_found)
    }
    .await;
    let file = match found {
        Ok(file) => file,
        Err(e) => return error_response(status_of(&e), e),
    };
    let stream = match state.services.get::<FileStore>().stream(&file.storage_key).await {
        Ok(stream) => stream,
        Err(e) => return error_response(status_of(&e), e),
    };
    let disposition = content_disposition(&file.filename);
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, file.content_type.clone()),
        (header::CONTENT_LENGTH, file.size_bytes.to_string()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CACHE_CONTROL, "private, no-store".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'".to_owned(),
        ),
    ] {
        if let Ok(value) = value.parse() {
            h.insert(name, value);
        }
    }
    response
}

/// An invoice as PDF (`/invoices/<Invoice id>.pdf`), for the tenant's managers and admins.
pub(super) async fn invoice_pdf(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    let found = async {
        let (db, actor) = read_unit(&state, &headers, peer).await?;
        crate::billing::may_see_invoices(&actor)?;
        let not_found = || AppError::NotFound { what: "invoice" };
        let id = file.strip_suffix(".pdf").ok_or_else(not_found)?;
        let id = expect_global_id("id", &async_graphql::ID(id.to_owned()), NodeType::Invoice)
            .map_err(|_| not_found())?;
        let document = {
            let mut conn = db.conn().await?;
            crate::billing::InvoiceDocument::load(&mut conn, id).await?
        };
        db.commit().await?;
        let document = document.ok_or_else(not_found)?;
        let fonts = state.services.shared::<PdfFonts>();
        let tenant_name = db.tenant().name.clone();
        // Laying out and subsetting fonts is CPU work: off the async threads.
        tokio::task::spawn_blocking(move || {
            let bytes = document.render(&fonts, &tenant_name)?;
            Ok::<_, AppError>((document.file_name(), bytes))
        })
        .await
        .map_err(AppError::internal)?
    }
    .await;
    match found {
        Ok((name, bytes)) => {
            let mut response = Body::from(bytes).into_response();
            let h = response.headers_mut();
            for (name, value) in [
                (header::CONTENT_TYPE, "application/pdf".to_owned()),
                (header::CONTENT_DISPOSITION, content_disposition(&name)),
                (header::CACHE_CONTROL, "private, no-store".to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            ] {
                if let Ok(value) = value.parse() {
                    h.insert(name, value);
                }
            }
            response
        }
        Err(e) => error_response(status_of(&e), e),
    }
}

/// `attachment` with an ASCII fallback name and the exact one in RFC 5987 form.
fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' })
        .filter(|c| !matches!(c, '"' | '\\'))
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}
