//! Request → decision, fail-closed: anything that cannot be evaluated cleanly is a denial.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use cedar_policy as cedar;
use serde_json::Value;
use writ_core::{canonical, Delegation};

use crate::annotations::{ApprovalRule, Grant};
use crate::decision::{Approver, Decision, Limits, Reason};
use crate::request::{Request, ResourceKind};
use crate::set::{PolicySet, Rule, ACTION_TYPE, GROUP_TYPE, PRINCIPAL_TYPE};

/// Context attributes writ fills in itself; a request's context may not carry them.
const ARGS: &str = "args";
const ARGS_JSON: &str = "args_json";

impl PolicySet {
    /// Decides `request`.
    ///
    /// - A forbid that matches denies, whatever permits match ([`Reason::Forbid`]).
    /// - Any evaluation error of any policy denies ([`Reason::EvaluationError`]), so a forbid
    ///   that fails can never let a request through.
    /// - A request the schema does not describe denies: an unknown action, a resource of no
    ///   known type or of a type the action does not apply to, arguments or context of the
    ///   wrong types, a number RFC 8785 cannot carry exactly.
    /// - When only permits with `@approvals` match, the decision is [`Decision::Pending`];
    ///   when a plain permit matches too, it is a permit.
    /// - Otherwise nothing permitted: [`Reason::NoPermit`].
    ///
    /// Lifetime and uses come from the deciding permits' annotations within `limits`.
    pub fn evaluate(&self, request: &Request, limits: &Limits) -> Decision {
        self.decide(request, limits, None)
    }

    /// Decides `request` again once approvals are in: a decision that would be pending is a
    /// permit when at least the required number of distinct approvers, other than the
    /// requester and members of the approver group (directly or through group parents in
    /// the entities), approved. Otherwise the same as [`PolicySet::evaluate`].
    pub fn evaluate_with_approvals(
        &self,
        request: &Request,
        limits: &Limits,
        approvals: &[Approver],
    ) -> Decision {
        self.decide(request, limits, Some(approvals))
    }

    fn decide(
        &self,
        request: &Request,
        limits: &Limits,
        approvals: Option<&[Approver]>,
    ) -> Decision {
        let (cedar_request, entities) = match self.build(request) {
            Ok(built) => built,
            Err(reason) => return Decision::deny(reason),
        };
        let response =
            cedar::Authorizer::new().is_authorized(&cedar_request, &self.policies, &entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<Reason> = diagnostics
            .errors()
            .map(|e| match e {
                cedar::AuthorizationError::PolicyEvaluationError(e) => Reason::EvaluationError {
                    policy: e.policy_id().to_string(),
                    detail: e.inner().to_string(),
                },
            })
            .collect();
        let mut deciding: Vec<&Rule> = diagnostics
            .reason()
            .filter_map(|id| {
                let id: &str = id.as_ref();
                self.rule_index.get(id).and_then(|&i| self.rules.get(i))
            })
            .collect();
        deciding.sort_by_key(|r| self.rule_index.get(&r.id).copied());

        match response.decision() {
            cedar::Decision::Deny => {
                let mut reasons: Vec<Reason> = deciding
                    .iter()
                    .filter(|r| r.effect == cedar::Effect::Forbid)
                    .map(|r| Reason::Forbid {
                        policy: r.id.clone(),
                        message: r.reason.clone(),
                    })
                    .collect();
                reasons.extend(errors);
                if reasons.is_empty() {
                    reasons.push(Reason::NoPermit);
                }
                Decision::Deny { reasons }
            }
            cedar::Decision::Allow if !errors.is_empty() => Decision::Deny { reasons: errors },
            cedar::Decision::Allow => {
                let permits: Vec<&Rule> = deciding
                    .into_iter()
                    .filter(|r| r.effect == cedar::Effect::Permit)
                    .collect();
                self.permit_or_pending(request, &permits, limits, approvals)
            }
        }
    }

    fn permit_or_pending(
        &self,
        request: &Request,
        permits: &[&Rule],
        limits: &Limits,
        approvals: Option<&[Approver]>,
    ) -> Decision {
        let mut plain = Vec::new();
        let mut gated = Vec::new();
        for rule in permits {
            match &rule.grant {
                Err(detail) => {
                    return Decision::deny(Reason::InvalidAnnotation {
                        policy: rule.id.clone(),
                        detail: detail.clone(),
                    })
                }
                Ok(grant) if grant.approval.is_some() => gated.push((*rule, grant)),
                Ok(grant) => plain.push((*rule, grant)),
            }
        }
        if !plain.is_empty() {
            return permit(&plain, limits);
        }
        // INVARIANT: Cedar allowed, so at least one permit decided; all of them need approval.
        let Some(rule) = strictest(&gated) else {
            return Decision::deny(Reason::NoPermit);
        };
        if approvals.is_some_and(|a| self.approved(request, rule, a)) {
            return permit(&gated, limits);
        }
        let (lifetime_secs, uses) = match permit(&gated, limits) {
            Decision::Permit {
                lifetime_secs,
                uses,
                ..
            } => (lifetime_secs, uses),
            _ => (limits.lifetime(None), limits.uses(None)),
        };
        Decision::Pending {
            policy_ids: gated.iter().map(|(r, _)| r.id.clone()).collect(),
            approvals_required: rule.required,
            approver_group: rule.group.clone(),
            lifetime_secs,
            uses,
        }
    }

    /// Whether a principal with `groups` is a member of `group`: directly, or through a
    /// group whose ancestors in the set's entities include it.
    pub fn in_group(&self, groups: &[String], group: &str) -> bool {
        let target = group_uid(group);
        groups.iter().any(|g| {
            g == group
                || match (&target, group_uid(g)) {
                    (Some(target), Some(g)) => self.entities.is_ancestor_of(target, &g),
                    _ => false,
                }
        })
    }

    /// Whether enough distinct approvers from the group, not the requester, approved.
    fn approved(&self, request: &Request, rule: &ApprovalRule, approvals: &[Approver]) -> bool {
        let distinct: BTreeSet<&str> = approvals
            .iter()
            .filter(|a| a.id != request.principal.id)
            .filter(|a| self.in_group(&a.groups, &rule.group))
            .map(|a| a.id.as_str())
            .collect();
        u32::try_from(distinct.len()).unwrap_or(u32::MAX) >= rule.required
    }

    /// The Cedar request and the entities it is evaluated against, or why there is none.
    fn build(&self, request: &Request) -> Result<(cedar::Request, cedar::Entities), Reason> {
        let invalid = |detail: String| Reason::InvalidRequest { detail };
        canonical::check_exact(&request.args).map_err(|e| invalid(format!("args: {e}")))?;
        canonical::check_exact(&request.context).map_err(|e| invalid(format!("context: {e}")))?;

        // The action.
        let unknown_action = || Reason::UnknownAction {
            action: request.action.clone(),
        };
        if !self.actions.contains(&request.action) {
            return Err(unknown_action());
        }
        let action = uid(ACTION_TYPE, &request.action).ok_or_else(unknown_action)?;
        let shape = self
            .shapes
            .get(&request.action)
            .ok_or_else(unknown_action)?;

        // The resource.
        let unknown_resource = || Reason::UnknownResource {
            resource: request.resource.clone(),
        };
        let kind = ResourceKind::parse(&request.resource).ok_or_else(unknown_resource)?;
        let applies = self
            .schema()
            .resources_for_action(&action)
            .is_some_and(|mut types| types.any(|t| t.to_string() == kind.type_name()));
        if !applies {
            return Err(unknown_resource());
        }
        let resource = uid(kind.type_name(), &request.resource).ok_or_else(unknown_resource)?;

        // The entities: the set's, the principal and (unless the set has it) the resource.
        let principal = uid(PRINCIPAL_TYPE, &request.principal.id)
            .ok_or_else(|| invalid(format!("principal `{}`", request.principal.id)))?;
        let groups = request
            .principal
            .groups
            .iter()
            .map(|g| group_uid(g).ok_or_else(|| invalid(format!("group `{g}`"))))
            .collect::<Result<HashSet<_>, _>>()?;
        let mut added = vec![entity(
            principal.clone(),
            [("role", request.principal.role.as_str())],
            groups,
        )
        .map_err(|e| invalid(format!("principal: {e}")))?];
        if self.entities.get(&resource).is_none() {
            added.push(
                entity(
                    resource.clone(),
                    kind.attrs(&request.resource),
                    HashSet::new(),
                )
                .map_err(|e| invalid(format!("resource: {e}")))?,
            );
        }
        // Entities of a type whose built shape was checked against the schema when the set
        // was read need no check per request.
        let checked =
            self.conforming.contains(PRINCIPAL_TYPE) && self.conforming.contains(kind.type_name());
        let entities = self
            .entities
            .clone()
            .add_entities(added, (!checked).then(|| self.schema()))
            .map_err(|e| invalid(format!("entities: {}", clip(&e.to_string()))))?;

        // The context: the request's, plus the arguments, reduced to what the schema declares
        // and typed by it.
        let mut context = match &request.context {
            Value::Object(map) => map.clone(),
            Value::Null => serde_json::Map::new(),
            _ => return Err(invalid("context: not a JSON object".into())),
        };
        for reserved in [ARGS, ARGS_JSON] {
            if context.contains_key(reserved) {
                return Err(invalid(format!(
                    "context: `{reserved}` is filled in by writ from the arguments"
                )));
            }
        }
        context.insert(
            ARGS_JSON.into(),
            Value::String(canonical::to_canonical_string(&request.args)),
        );
        context.insert(ARGS.into(), request.args.clone());
        let projected = shape.project(Value::Object(context));
        let Value::Object(context) = &projected else {
            return Err(invalid("context: not a record in the schema".into()));
        };
        let pairs = context
            .iter()
            .map(|(k, v)| Ok((k.clone(), to_cedar(v, k)?)))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| invalid(format!("context: {e}")))?;
        let context =
            cedar::Context::from_pairs(pairs).map_err(|e| invalid(format!("context: {e}")))?;

        // Request::new with the schema checks the types of the principal, resource and
        // context against the action's declaration.
        let cedar_request = cedar::Request::new(
            principal,
            action.clone(),
            resource,
            context,
            Some(self.schema()),
        )
        .map_err(|e| {
            // Cedar's request check says only that the context is not valid; its
            // schema-directed JSON reader says where (used on this path only).
            let detail = match cedar::Context::from_json_value(
                projected.clone(),
                Some((self.schema(), &action)),
            ) {
                Err(why) => format!("context: {why}"),
                Ok(_) => e.to_string(),
            };
            invalid(clip(&detail))
        })?;
        Ok((cedar_request, entities))
    }
}

/// A permit from the deciding `rules`: the smallest lifetime and uses they ask for, within
/// the limits, and a delegation only if every one of them grants the same.
fn permit(rules: &[(&Rule, &Grant)], limits: &Limits) -> Decision {
    let lifetime = rules.iter().filter_map(|(_, g)| g.lifetime_secs).min();
    let uses = rules.iter().filter_map(|(_, g)| g.uses).min();
    let delegation: Option<Delegation> = match rules.split_first() {
        Some(((_, first), rest)) => first
            .delegation
            .clone()
            .filter(|d| rest.iter().all(|(_, g)| g.delegation.as_ref() == Some(d))),
        None => None,
    };
    Decision::Permit {
        policy_ids: rules.iter().map(|(r, _)| r.id.clone()).collect(),
        lifetime_secs: limits.lifetime(lifetime),
        uses: limits.uses(uses),
        delegation,
    }
}

/// The approval rule with the most approvals (the first such, in source order).
fn strictest<'a>(gated: &[(&Rule, &'a Grant)]) -> Option<&'a ApprovalRule> {
    gated.iter().filter_map(|(_, g)| g.approval.as_ref()).fold(
        None,
        |best: Option<&ApprovalRule>, rule| match best {
            Some(b) if b.required >= rule.required => Some(b),
            _ => Some(rule),
        },
    )
}

/// An entity with string attributes.
pub(crate) fn entity<'a>(
    uid: cedar::EntityUid,
    attrs: impl IntoIterator<Item = (&'a str, &'a str)>,
    parents: HashSet<cedar::EntityUid>,
) -> Result<cedar::Entity, String> {
    let attrs: HashMap<String, cedar::RestrictedExpression> = attrs
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_owned(),
                cedar::RestrictedExpression::new_string(v.to_owned()),
            )
        })
        .collect();
    cedar::Entity::new(uid, attrs, parents).map_err(|e| e.to_string())
}

/// JSON as a Cedar value, with no escapes (`__entity`, `__extn` are plain record keys):
/// objects are records, arrays sets, integers `Long`s. `null`, and numbers that are not
/// integers within `Long`, are refused. `path` names the value in errors.
fn to_cedar(value: &Value, path: &str) -> Result<cedar::RestrictedExpression, String> {
    use cedar::RestrictedExpression as X;
    Ok(match value {
        Value::Null => return Err(format!("`{path}` is null")),
        Value::Bool(b) => X::new_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => X::new_long(i),
            None => {
                return Err(format!(
                    "`{path}` is {n}: Cedar numbers are integers (use an integer, e.g. in \
                     minor units, or a string)"
                ))
            }
        },
        Value::String(s) => X::new_string(s.clone()),
        Value::Array(items) => X::new_set(
            items
                .iter()
                .map(|v| to_cedar(v, &format!("{path}[]")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Object(map) => X::new_record(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), to_cedar(v, &format!("{path}.{k}"))?)))
                .collect::<Result<Vec<_>, String>>()?,
        )
        .map_err(|e| e.to_string())?,
    })
}

/// Cedar's messages quote whole values; a denial reason keeps the first 400 characters.
fn clip(text: &str) -> String {
    const MAX: usize = 400;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// The uid of an entity of one of writ's types.
pub(crate) fn uid(type_name: &'static str, id: &str) -> Option<cedar::EntityUid> {
    Some(cedar::EntityUid::from_type_name_and_id(
        writ_type(type_name)?,
        cedar::EntityId::new(id),
    ))
}

/// One of writ's entity type names, parsed once (Cedar's parser is slow next to a decision).
fn writ_type(name: &'static str) -> Option<cedar::EntityTypeName> {
    static TYPES: OnceLock<HashMap<&'static str, cedar::EntityTypeName>> = OnceLock::new();
    TYPES
        .get_or_init(|| {
            [ACTION_TYPE, PRINCIPAL_TYPE, GROUP_TYPE]
                .into_iter()
                .chain(ResourceKind::samples().map(|(_, kind)| kind.type_name()))
                .filter_map(|name| Some((name, name.parse().ok()?)))
                .collect()
        })
        .get(name)
        .cloned()
}

pub(crate) fn group_uid(group: &str) -> Option<cedar::EntityUid> {
    uid(GROUP_TYPE, group)
}
