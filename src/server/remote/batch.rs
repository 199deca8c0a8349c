//! `/batch` in a cluster: the operations run in order, each here or on the instance holding
//! its connection; the batch answers once the last one is done.

use std::time::Instant;

use super::{BatchRun, Owner, Remote, Step};
use crate::api::batch::Op;
use crate::api::response::Response;
use crate::api::routes::ApiError;
use crate::server::commands::{batch_response, command_of, with_status};
use crate::server::hub::Hub;

impl Remote {
    /// Runs a batch's operations in order until one has to wait; `Now` when none had to.
    pub(super) fn batch(
        &mut self,
        hub: &mut Hub,
        ops: Vec<Result<Op, String>>,
        owner: Owner,
    ) -> Step {
        let id = self.ticket();
        let run = BatchRun {
            owner,
            rest: ops.into(),
            results: Vec::new(),
            deadline: self.node.deadline(),
        };
        self.batches.insert(id, run);
        match self.continue_batch(hub, id) {
            Some((_, response)) => Step::Now(response),
            None => Step::Later,
        }
    }

    /// The batch's answer and who waits for it, once its last operation is done.
    pub(super) fn continue_batch(&mut self, hub: &mut Hub, id: u64) -> Option<(Owner, Response)> {
        loop {
            let run = self.batches.get_mut(&id)?;
            let Some(op) = run.rest.pop_front() else {
                let run = self.batches.remove(&id)?;
                return Some((run.owner, batch_response(&run.results)));
            };
            let late = Instant::now() >= run.deadline;
            let response = match op {
                _ if late => {
                    let why = "the batch took longer than --backend-timeout; not carried out";
                    Response::error(&ApiError::Unavailable(why.into()))
                }
                Err(why) => Response::error(&ApiError::BadRequest(why)),
                Ok(op) => match self.run(hub, command_of(op), Owner::Batch(id)) {
                    Ok(Step::Now(response)) => response,
                    Ok(Step::Later) => return None,
                    Err(e) => Response::error(&e),
                },
            };
            self.batches
                .get_mut(&id)?
                .results
                .push(with_status(&response));
        }
    }
}
