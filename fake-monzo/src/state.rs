//! The fake's memory: clients, codes, grants and tokens, and the rules Monzo
//! applies to them. Everything here is synchronous and runs under one mutex,
//! so each operation is atomic with respect to concurrent requests.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::ApiError;
use crate::secret::{random_token, secrets_match};
use crate::{ClientRegistration, Failure, FakeMonzoConfig, FakeUser, Stats};

pub(crate) struct State {
    clients: HashMap<String, ClientRegistration>,
    users: Vec<FakeUser>,
    access_token_ttl: Duration,
    code_ttl: Duration,
    codes: HashMap<String, IssuedCode>,
    grants: HashMap<GrantId, Grant>,
    next_grant: GrantId,
    access_tokens: HashMap<String, AccessToken>,
    /// Refresh token -> the grant it currently belongs to.
    refresh_tokens: HashMap<String, GrantId>,
    /// Access tokens a newer login of the same user and client replaced, until they would have
    /// expired: Monzo tells those apart (`unauthorized.bad_access_token.evicted`).
    evicted: HashMap<String, Instant>,
    pub(crate) pending_failures: VecDeque<Failure>,
    /// Statuses the next `POST /oauth2/logout` calls answer instead of logging out.
    pub(crate) pending_logout_failures: VecDeque<u16>,
    pub(crate) stats: Stats,
}

/// Identifies one login: the tokens issued from one authorization code and
/// every pair rotated from them by refreshing. Revoking a grant revokes the
/// whole family, which is what RFC 6749 §4.1.2 asks for when a code is
/// presented twice.
type GrantId = u64;

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    user_id: String,
    expires_at: Instant,
    /// Set once exchanged; kept so that a second use can revoke the grant.
    redeemed: Option<GrantId>,
}

struct Grant {
    client_id: String,
    user_id: String,
    /// SCA approval belongs to the login, so it survives refreshes but a
    /// fresh login starts unapproved.
    sca_approved: bool,
    access_token: String,
    refresh_token: Option<String>,
}

struct AccessToken {
    grant: GrantId,
    expires_at: Instant,
}

/// Who an access token speaks for.
pub(crate) struct AccessInfo {
    pub(crate) client_id: String,
    pub(crate) user_id: String,
    pub(crate) sca_approved: bool,
}

/// The success body of `POST /oauth2/token`, in Monzo's field set.
#[derive(Serialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) client_id: String,
    pub(crate) expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    pub(crate) token_type: &'static str,
    pub(crate) user_id: String,
}

impl State {
    pub(crate) fn new(config: FakeMonzoConfig) -> Self {
        let mut state = Self {
            clients: HashMap::new(),
            users: config.users,
            access_token_ttl: config.access_token_ttl,
            code_ttl: config.code_ttl,
            codes: HashMap::new(),
            grants: HashMap::new(),
            next_grant: 1,
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            evicted: HashMap::new(),
            pending_failures: VecDeque::new(),
            pending_logout_failures: VecDeque::new(),
            stats: Stats::default(),
        };
        for client in config.clients {
            state.register_client(client);
        }
        state
    }

    pub(crate) fn register_client(&mut self, reg: ClientRegistration) {
        self.clients.insert(reg.client_id.clone(), reg);
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<&ClientRegistration> {
        self.clients.get(client_id)
    }

    pub(crate) fn users(&self) -> &[FakeUser] {
        &self.users
    }

    pub(crate) fn user(&self, user_id: &str) -> Option<&FakeUser> {
        self.users.iter().find(|user| user.user_id == user_id)
    }

    /// Issues a single-use code bound to the client, the redirect URI used at
    /// login, and the user who approved.
    pub(crate) fn issue_code(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        user_id: &str,
    ) -> String {
        let now = Instant::now();
        self.prune(now);
        let code = random_token();
        self.codes.insert(
            code.clone(),
            IssuedCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                user_id: user_id.to_owned(),
                expires_at: now + self.code_ttl,
                redeemed: None,
            },
        );
        code
    }

    /// `grant_type=authorization_code`.
    pub(crate) fn exchange_code(
        &mut self,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
        code: &str,
    ) -> Result<TokenResponse, ApiError> {
        let client = self.authenticate_client(client_id, client_secret)?;
        self.stats.code_exchanges += 1;

        let Some(issued) = self.codes.get(code) else {
            return Err(ApiError::bad_authorization_code());
        };
        // A code stolen by another client is refused without burning it.
        if issued.client_id != client.client_id {
            return Err(ApiError::bad_authorization_code());
        }
        // Checked before expiry so that a replay after expiry still revokes.
        if let Some(grant) = issued.redeemed {
            self.revoke_grant(grant);
            return Err(ApiError::bad_authorization_code());
        }
        if Instant::now() >= issued.expires_at {
            return Err(ApiError::bad_authorization_code());
        }
        if issued.redirect_uri != redirect_uri {
            return Err(ApiError::bad_redirect_uri());
        }

        let user_id = issued.user_id.clone();
        let (grant, response) = self.start_grant(&client, &user_id);
        if let Some(issued) = self.codes.get_mut(code) {
            issued.redeemed = Some(grant);
        }
        self.stats.successful_code_exchanges += 1;
        Ok(response)
    }

    /// `grant_type=refresh_token`: one-time refresh tokens, rotated together
    /// with the access token.
    pub(crate) fn refresh(
        &mut self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, ApiError> {
        let client = self.authenticate_client(client_id, client_secret)?;
        self.stats.refreshes += 1;

        let Some(&grant_id) = self.refresh_tokens.get(refresh_token) else {
            return Err(ApiError::bad_refresh_token());
        };
        let Some(grant) = self.grants.get(&grant_id) else {
            return Err(ApiError::bad_refresh_token());
        };
        if grant.client_id != client.client_id {
            return Err(ApiError::bad_refresh_token());
        }
        let user_id = grant.user_id.clone();

        // One live token per user and client; there should be no other grant
        // here, but a stale one must not outlive the new pair.
        self.revoke_grants_of(&client.client_id, &user_id, Some(grant_id));
        Ok(self.rotate(grant_id, &client))
    }

    /// The identity behind a live access token, if it is one.
    pub(crate) fn access(&self, token: &str) -> Option<AccessInfo> {
        let access = self.access_tokens.get(token)?;
        if Instant::now() >= access.expires_at {
            return None;
        }
        let grant = self.grants.get(&access.grant)?;
        Some(AccessInfo {
            client_id: grant.client_id.clone(),
            user_id: grant.user_id.clone(),
            sca_approved: grant.sca_approved,
        })
    }

    /// Why an access token that is not live is refused: evicted by a newer login, or simply
    /// unknown, expired or revoked.
    pub(crate) fn refusal(&self, token: &str) -> ApiError {
        match self.evicted.get(token) {
            Some(until) if Instant::now() < *until => ApiError::evicted_access_token(),
            _ => ApiError::bad_access_token(),
        }
    }

    /// `POST /oauth2/logout`. Monzo documents that a logged-out session can no
    /// longer be refreshed either, so the whole grant goes.
    pub(crate) fn logout(&mut self, token: &str) -> Result<(), ApiError> {
        let info = self.access(token).ok_or_else(ApiError::bad_access_token)?;
        let grant = self.access_tokens[token].grant;
        self.revoke_grant(grant);
        self.stats.logouts.push(info.user_id);
        Ok(())
    }

    /// Approves SCA for every grant of the user that has a live access token.
    pub(crate) fn approve_sca(&mut self, user_id: &str) {
        let now = Instant::now();
        let live: Vec<GrantId> = self
            .access_tokens
            .values()
            .filter(|access| now < access.expires_at)
            .map(|access| access.grant)
            .collect();
        for id in live {
            if let Some(grant) = self.grants.get_mut(&id)
                && grant.user_id == user_id
            {
                grant.sca_approved = true;
            }
        }
    }

    fn authenticate_client(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<ClientRegistration, ApiError> {
        match self.clients.get(client_id) {
            Some(client) if secrets_match(client_secret, &client.client_secret) => {
                Ok(client.clone())
            }
            _ => Err(ApiError::bad_client_credentials()),
        }
    }

    /// A fresh login: replaces whatever the user had with this client (its live access
    /// tokens are evicted).
    fn start_grant(
        &mut self,
        client: &ClientRegistration,
        user_id: &str,
    ) -> (GrantId, TokenResponse) {
        let now = Instant::now();
        let replaced: Vec<(String, Instant)> = self
            .grants
            .values()
            .filter(|grant| grant.client_id == client.client_id && grant.user_id == user_id)
            .filter_map(|grant| {
                let access = self.access_tokens.get(&grant.access_token)?;
                (now < access.expires_at).then(|| (grant.access_token.clone(), access.expires_at))
            })
            .collect();
        self.evicted.extend(replaced);
        self.revoke_grants_of(&client.client_id, user_id, None);
        let id = self.next_grant;
        self.next_grant += 1;
        self.grants.insert(
            id,
            Grant {
                client_id: client.client_id.clone(),
                user_id: user_id.to_owned(),
                sca_approved: false,
                access_token: String::new(),
                refresh_token: None,
            },
        );
        let response = self.rotate(id, client);
        (id, response)
    }

    /// Replaces the grant's token pair with a new one; the old access and
    /// refresh tokens stop working at once.
    fn rotate(&mut self, id: GrantId, client: &ClientRegistration) -> TokenResponse {
        let now = Instant::now();
        let access_token = random_token();
        let refresh_token = client.confidential.then(random_token);
        let grant = self
            .grants
            .get_mut(&id)
            .expect("rotate is only called for an existing grant");
        let old_access = std::mem::replace(&mut grant.access_token, access_token.clone());
        let old_refresh = std::mem::replace(&mut grant.refresh_token, refresh_token.clone());
        let user_id = grant.user_id.clone();
        self.access_tokens.remove(&old_access);
        if let Some(old) = old_refresh {
            self.refresh_tokens.remove(&old);
        }
        self.access_tokens.insert(
            access_token.clone(),
            AccessToken {
                grant: id,
                expires_at: now + self.access_token_ttl,
            },
        );
        if let Some(refresh) = &refresh_token {
            self.refresh_tokens.insert(refresh.clone(), id);
        }
        TokenResponse {
            access_token,
            client_id: client.client_id.clone(),
            expires_in: self.access_token_ttl.as_secs(),
            refresh_token,
            token_type: "Bearer",
            user_id,
        }
    }

    fn revoke_grants_of(&mut self, client_id: &str, user_id: &str, keep: Option<GrantId>) {
        let doomed: Vec<GrantId> = self
            .grants
            .iter()
            .filter(|(id, grant)| {
                Some(**id) != keep && grant.client_id == client_id && grant.user_id == user_id
            })
            .map(|(id, _)| *id)
            .collect();
        for id in doomed {
            self.revoke_grant(id);
        }
    }

    fn revoke_grant(&mut self, id: GrantId) {
        if let Some(grant) = self.grants.remove(&id) {
            self.access_tokens.remove(&grant.access_token);
            if let Some(refresh) = grant.refresh_token {
                self.refresh_tokens.remove(&refresh);
            }
        }
    }

    /// Forgets codes once nothing can come of them: a redeemed code is kept
    /// for as long as the tokens from it could be live, so that a late replay
    /// still revokes them. Keeps demo mode's memory bounded.
    fn prune(&mut self, now: Instant) {
        self.evicted.retain(|_, until| now < *until);
        let keep_redeemed_for = self.access_token_ttl;
        self.codes.retain(|_, code| match code.redeemed {
            None => now < code.expires_at,
            Some(_) => now < code.expires_at + keep_redeemed_for,
        });
    }
}
