// The signed-in person: the session token from Sessions.SignIn, kept in localStorage (shared by
// the console's tabs, removed at sign-out; the server ends it at expiry anyway), sent as
// `authorization: Bearer` on every call.
// A call refused as UNAUTHENTICATED (session expired, signed out elsewhere, account disabled)
// sends the person back to the sign-in form with a message.
import { unary, serverStream, Code } from "./grpcweb.js";

const KEY = "guichet.session";

export function current() {
  try { return JSON.parse(localStorage.getItem(KEY) || "null"); } catch (_) { return null; }
}

function save(s) { localStorage.setItem(KEY, JSON.stringify(s)); }

export function clear() {
  localStorage.removeItem(KEY);
  sessionStorage.removeItem("guichet.state");
}

function headers() {
  const s = current();
  return s ? { authorization: "Bearer " + s.session } : {};
}

/** Back to the sign-in form, saying why. */
export function expired() {
  clear();
  location.assign("/console/?expired=1");
}

function guard(e) {
  if (e && e.code === Code.UNAUTHENTICATED && current()) expired();
  throw e;
}

/** A unary call of `service` ("AgentDesktop"), as the signed-in person. */
export function call(service, method, requestType, responseType, request) {
  return unary(`/guichet.v1.${service}/${method}`, `guichet.v1.${requestType}`,
    `guichet.v1.${responseType}`, request, headers()).catch(guard);
}

/** A server stream of `service`, as the signed-in person. */
export function stream(service, method, requestType, responseType, request, onMessage, signal) {
  return serverStream(`/guichet.v1.${service}/${method}`, `guichet.v1.${requestType}`,
    `guichet.v1.${responseType}`, request, headers(), onMessage, signal).catch(guard);
}

export async function signIn(login, password) {
  const answer = await unary("/guichet.v1.Sessions/SignIn", "guichet.v1.SignInRequest",
    "guichet.v1.SignInResponse", { login, password }, {});
  save({ session: answer.session, who: answer.who });
  return answer.who;
}

export async function signOut() {
  try {
    await unary("/guichet.v1.Sessions/SignOut", "guichet.v1.SignOutRequest",
      "guichet.v1.SignOutResponse", {}, headers());
  } finally {
    clear();
  }
}
