//! The department tree.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use qiao_domain::DepartmentId;
use qiao_domain::org::Department;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, ClientOrigin, JsonBody, Path};

#[derive(Serialize, ToSchema)]
pub struct DepartmentList {
    /// Every department; rebuild the tree from `parent_id`.
    pub items: Vec<Department>,
}

#[derive(Serialize, ToSchema)]
pub struct DepartmentDetail {
    pub department: Department,
    /// From the root down to the parent.
    pub ancestors: Vec<Department>,
    /// Direct sub-departments.
    pub children: Vec<Department>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDepartment {
    pub name: String,
    /// Default: the organisation root.
    #[serde(default)]
    pub parent_id: Option<DepartmentId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDepartment {
    /// Rename.
    #[serde(default)]
    pub name: Option<String>,
    /// Move under another department.
    #[serde(default)]
    pub parent_id: Option<DepartmentId>,
}

/// The whole department tree.
#[utoipa::path(get, path = "/api/v1/departments", tag = "departments",
    responses((status = 200, body = DepartmentList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, Auth(auth): Auth) -> ApiResult<axum::Json<DepartmentList>> {
    Ok(axum::Json(DepartmentList { items: state.services.list_departments(&auth).await? }))
}

/// One department with its ancestors and children.
#[utoipa::path(get, path = "/api/v1/departments/{id}", tag = "departments",
    params(("id" = DepartmentId, Path, description = "Department id")),
    responses((status = 200, body = DepartmentDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<DepartmentId>,
) -> ApiResult<axum::Json<DepartmentDetail>> {
    let d = state.services.get_department(&auth, id).await?;
    Ok(axum::Json(DepartmentDetail { department: d.department, ancestors: d.ancestors, children: d.children }))
}

/// Create a department.
#[utoipa::path(post, path = "/api/v1/departments", tag = "departments", request_body = CreateDepartment,
    responses((status = 201, body = Department), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "department_name_taken"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    JsonBody(req): JsonBody<CreateDepartment>,
) -> ApiResult<Response> {
    let d = state.services.create_department(&auth, &req.name, req.parent_id, &origin).await?;
    Ok((StatusCode::CREATED, axum::Json(d)).into_response())
}

/// Rename or move a department.
#[utoipa::path(patch, path = "/api/v1/departments/{id}", tag = "departments",
    params(("id" = DepartmentId, Path, description = "Department id")), request_body = UpdateDepartment,
    responses((status = 200, body = Department), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "department_name_taken, department_cycle, root_department"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<DepartmentId>,
    JsonBody(req): JsonBody<UpdateDepartment>,
) -> ApiResult<axum::Json<Department>> {
    Ok(axum::Json(state.services.update_department(&auth, id, req.name.as_deref(), req.parent_id, &origin).await?))
}

/// Delete an empty department.
#[utoipa::path(delete, path = "/api/v1/departments/{id}", tag = "departments",
    params(("id" = DepartmentId, Path, description = "Department id")),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "department_not_empty, root_department")))]
pub async fn delete(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<DepartmentId>,
) -> ApiResult<StatusCode> {
    state.services.delete_department(&auth, id, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}
