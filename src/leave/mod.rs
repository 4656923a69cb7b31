//! Leave: types with their allowances, public holidays, requests and their decisions, and
//! balances computed from them.
//!
//! Working days follow the tenant's work week and holidays; a half day at either end of a
//! request counts one half. Leave years start in `LEAVE_YEAR_START_MONTH` and are named by
//! the calendar year they start in. Accrual is `UPFRONT` (the whole allowance from the
//! year's first day) or `MONTHLY` (a twelfth at the end of each month). Unused days carry
//! into the next year up to the type's cap. Nothing of a balance is stored: a changed
//! allowance or a cancelled request shows at once.

pub mod balances;
pub mod calendar;
pub mod emails;
pub mod graphql;
pub mod requests;
pub mod types;

pub use balances::{Balance, accrued, active_users, approved_days, balances, balances_of};
pub use calendar::{
    Calendar, Holiday, Span, calendar, create_holiday, delete_holiday, holidays_of, leave_year, leave_year_of,
};
pub use requests::{
    LeaveRequest, LeaveStatus, NewRequest, RequestFilter, cancel, decide, find, lock_for_files, page,
    remove_file, request, visible_file,
};
pub use types::{Accrual, LeaveType, LeaveTypeInput, create_type, types, types_by_ids, update_type};
