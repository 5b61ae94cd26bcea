//! The directory and the administration of people.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use qiao_domain::user::{Role, User};
use qiao_domain::{DepartmentId, UserId};
use qiao_service::users::{CreateUser, DirectoryQuery, UserPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, ClientOrigin, JsonBody, Path, Query};
use crate::routes::double_option;

/// Directory filters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DirectoryParams {
    /// Case-insensitive text in the username, name, e-mail or title, or the name's pinyin
    /// (`zhangwei`, `zhang wei`) or its initials (`zw`); traditional and simplified characters, full-width
    /// and ASCII letters match each other (at most 100 characters).
    pub q: Option<String>,
    /// Only people in this department (as primary or secondary department).
    pub department_id: Option<DepartmentId>,
    /// With `department_id`: include its whole subtree.
    #[serde(default)]
    pub recursive: bool,
    /// Include disabled accounts.
    #[serde(default)]
    pub include_disabled: bool,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

/// Members of one department.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemberParams {
    pub q: Option<String>,
    /// Include the whole subtree.
    #[serde(default)]
    pub recursive: bool,
    #[serde(default)]
    pub include_disabled: bool,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 2 to 32 characters: letters a-z (case is ignored), digits, `.`, `_`, `-`. `all` and
    /// `channel` are reserved (`@all` and `@channel` mention everyone).
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub title: Option<String>,
    /// Default `member`.
    #[serde(default)]
    pub role: Option<Role>,
    /// Default: the organisation root (for a department admin: the first department they manage).
    #[serde(default)]
    pub primary_department_id: Option<DepartmentId>,
    #[serde(default)]
    pub secondary_department_ids: Vec<DepartmentId>,
    /// Department admins only; default: the primary department.
    #[serde(default)]
    pub managed_department_ids: Vec<DepartmentId>,
    /// Default: a temporary password is generated, returned once, and must be changed at
    /// first sign-in.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    pub user: User,
    /// Present when the server chose the password: give it to the person; shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporary_password: Option<String>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// A new username: 2 to 32 characters: letters a-z (case is ignored), digits, `.`, `_`, `-`. `all` and
    /// `channel` are reserved (`@all` and `@channel` mention everyone).
    #[serde(default)]
    pub username: Option<String>,
    /// `null` removes the address.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub primary_department_id: Option<DepartmentId>,
    #[serde(default)]
    pub secondary_department_ids: Option<Vec<DepartmentId>>,
    #[serde(default)]
    pub managed_department_ids: Option<Vec<DepartmentId>>,
}

#[derive(Serialize, ToSchema)]
pub struct TemporaryPassword {
    /// Give it to the person; they must change it at their next sign-in. Shown once.
    pub temporary_password: String,
}

/// List or search the directory.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(DirectoryParams),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Guests cannot browse the directory"),
        (status = 404, body = ErrorBody, description = "Unknown department")))]
pub async fn list(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Query(p): Query<DirectoryParams>,
) -> ApiResult<axum::Json<UserPage>> {
    let page = state
        .services
        .list_users(
            &auth,
            DirectoryQuery {
                search: p.q,
                department_id: p.department_id,
                recursive: p.recursive,
                include_disabled: p.include_disabled,
                cursor: p.cursor,
                limit: p.limit,
            },
        )
        .await?;
    Ok(axum::Json(UserPage { items: page.items, next_cursor: page.next_cursor }))
}

/// Members of a department.
#[utoipa::path(get, path = "/api/v1/departments/{id}/members", tag = "departments",
    params(("id" = DepartmentId, Path, description = "Department id"), MemberParams),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn department_members(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<DepartmentId>,
    Query(p): Query<MemberParams>,
) -> ApiResult<axum::Json<UserPage>> {
    let page = state
        .services
        .list_users(
            &auth,
            DirectoryQuery {
                search: p.q,
                department_id: Some(id),
                recursive: p.recursive,
                include_disabled: p.include_disabled,
                cursor: p.cursor,
                limit: p.limit,
            },
        )
        .await?;
    Ok(axum::Json(UserPage { items: page.items, next_cursor: page.next_cursor }))
}

/// Create a person.
///
/// Owners create anyone; admins anyone but owners; department admins create members and
/// guests inside the departments they manage.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUser), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "username_taken, email_taken"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    JsonBody(req): JsonBody<CreateUserRequest>,
) -> ApiResult<Response> {
    let created = state
        .services
        .create_user(
            &auth,
            CreateUser {
                username: req.username,
                email: req.email,
                display_name: req.display_name,
                title: req.title,
                role: req.role,
                primary_department_id: req.primary_department_id,
                secondary_department_ids: req.secondary_department_ids,
                managed_department_ids: req.managed_department_ids,
                password: req.password,
            },
            &origin,
        )
        .await?;
    let body = CreatedUser { user: created.user, temporary_password: created.temporary_password };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// A person's profile. Guests see themselves and the people they share a conversation with;
/// anyone else is `404`, like a person who does not exist.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = UserId, Path, description = "User id")),
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(state.services.get_user(&auth, id).await?))
}

/// Change a person's profile, role or departments.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = UserId, Path, description = "User id")), request_body = UpdateUserRequest,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "username_taken, email_taken, last_owner"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<UserId>,
    JsonBody(req): JsonBody<UpdateUserRequest>,
) -> ApiResult<axum::Json<User>> {
    let patch = UserPatch {
        username: req.username,
        email: req.email,
        display_name: req.display_name,
        title: req.title,
        role: req.role,
        primary_department_id: req.primary_department_id,
        secondary_department_ids: req.secondary_department_ids,
        managed_department_ids: req.managed_department_ids,
    };
    Ok(axum::Json(state.services.update_user(&auth, id, patch, &origin).await?))
}

/// Disable a person: they cannot sign in, and all their sessions end at once.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users",
    params(("id" = UserId, Path, description = "User id")),
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "last_owner")))]
pub async fn disable(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(state.services.disable_user(&auth, id, &origin).await?))
}

/// Re-enable a disabled person.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users",
    params(("id" = UserId, Path, description = "User id")),
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(state.services.enable_user(&auth, id, &origin).await?))
}

/// Reset a person's password to a temporary one (returned once) and end their sessions.
#[utoipa::path(post, path = "/api/v1/users/{id}/reset-password", tag = "users",
    params(("id" = UserId, Path, description = "User id")),
    responses((status = 200, body = TemporaryPassword), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<TemporaryPassword>> {
    let temporary_password = state.services.reset_password(&auth, id, &origin).await?;
    Ok(axum::Json(TemporaryPassword { temporary_password }))
}
