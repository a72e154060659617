// The console's texts in French and English. The language is the one chosen with the header's
// button (kept in localStorage), else the browser's when it is English, else French.
const TEXTS = {
  fr: {
    "app.title": "Guichet — poste agent",
    "app.name": "Guichet",
    "skip": "Aller au contenu",
    "lang.switch": "English",
    "lang.switch.label": "Switch to English",
    "signin.title": "Connexion",
    "signin.login": "Identifiant",
    "signin.password": "Mot de passe",
    "signin.submit": "Se connecter",
    "signin.busy": "Connexion…",
    "signin.expired": "Votre session a expiré ou a été fermée : reconnectez-vous.",
    "signin.signedout": "Vous êtes déconnecté.",
    "signin.wrong": "Identifiant ou mot de passe incorrect.",
    "signin.help": "Votre administrateur vous a remis un identifiant et un mot de passe.",
    "signout": "Se déconnecter",
    "nav.accessibility": "Accessibilité : partiellement conforme",
    "nav.desktop": "Mon poste",
    "nav.supervisor": "Supervision",
    "error.network": "Le serveur ne répond pas : nouvel essai dans quelques secondes.",
    "error.generic": "L’opération a échoué : {message}",
    "state.title": "Mon état",
    "state.offline": "Hors ligne",
    "state.available": "Disponible",
    "state.paused": "En pause",
    "state.paused.reason": "En pause ({reason})",
    "state.wrap_up": "Après-appel jusqu’à {time}",
    "state.unknown": "Hors ligne (choisissez « Disponible » pour recevoir des demandes)",
    "state.since": "depuis {time} ({duration})",
    "state.go.available": "Disponible",
    "state.go.pause": "Pause",
    "state.go.offline": "Hors ligne",
    "state.reason": "Motif de la pause",
    "reason.break": "Pause",
    "reason.lunch": "Déjeuner",
    "reason.meeting": "Réunion",
    "reason.training": "Formation",
    "reason.admin": "Tâches administratives",
    "device.title": "Mon téléphone",
    "device.label": "Numéro ou adresse SIP où les appels me sont transférés",
    "device.save": "Enregistrer",
    "device.saved": "Téléphone enregistré.",
    "device.none": "aucun",
    "stream.connected": "Connecté : les demandes arrivent ici.",
    "stream.reconnecting": "Connexion perdue : reconnexion…",
    "sound.enable": "Activer la sonnerie",
    "offer.title": "Nouvelle demande",
    "offer.announce": "Nouvelle demande {channel} de {contact} (file {queue}).",
    "offer.channel": "Canal",
    "offer.contact": "Contact",
    "offer.queue": "File",
    "offer.why": "Pourquoi moi",
    "offer.deadline": "À accepter avant",
    "offer.left": "{seconds} s restantes",
    "offer.accept": "Accepter",
    "offer.decline": "Refuser",
    "offer.withdrawn": "La demande n’est plus proposée ({reason}).",
    "offer.transfer": "Transférée par {agent} : {note}",
    "offer.history": "Historique du contact",
    "offer.history.none": "Aucun contact précédent.",
    "work.title": "Mes demandes en cours",
    "work.none": "Aucune demande en cours.",
    "work.capacity": "{count} en cours",
    "channel.voice": "appel",
    "channel.email": "courriel",
    "channel.sms": "SMS",
    "channel.chat": "discussion",
    "conv.title": "Conversation",
    "conv.empty": "Pas encore de message.",
    "conv.inbound": "Reçu de {from}",
    "conv.outbound": "Envoyé par {agent}",
    "conv.outbound.system": "Message automatique",
    "conv.attachments": "Pièces jointes",
    "conv.attachment.unavailable": "{name} (non conservée)",
    "conv.voicemail": "Message vocal",
    "conv.voicemail.link": "Écouter l’enregistrement",
    "conv.typing": "Le contact écrit…",
    "reply.label": "Réponse",
    "reply.subject": "Objet (vide : « Re: » et l’objet reçu)",
    "reply.send": "Envoyer",
    "reply.sent": "Message envoyé.",
    "reply.voice": "Un appel se traite au téléphone : pas de réponse écrite.",
    "complete.title": "Clôturer",
    "complete.code": "Code de clôture",
    "complete.code.free": "Code de clôture (texte libre)",
    "complete.notes": "Notes",
    "complete.submit": "Clôturer la demande",
    "complete.done": "Demande clôturée ({code}).",
    "transfer.title": "Transférer",
    "transfer.to.queue": "Vers une file",
    "transfer.to.agent": "Vers un agent",
    "transfer.target": "Identifiant de la file ou de l’agent",
    "transfer.note": "Note pour la personne qui reprend",
    "transfer.submit": "Transférer",
    "transfer.done": "Demande transférée.",
    "sup.title": "Supervision",
    "sup.refused": "Cette page est réservée aux superviseurs. Vous êtes connecté en tant que {role} ({login}) : revenez à votre poste.",
    "sup.agents": "Agents",
    "sup.col.id": "Identifiant",
    "sup.col.name": "Nom",
    "sup.col.state": "État",
    "sup.col.load": "Demandes en cours",
    "sup.signin": "Connectez-vous d’abord.",
    "role.agent": "agent",
    "role.supervisor": "superviseur",
    "role.admin": "administrateur",
    "role.integrator": "intégrateur",
  },
  en: {
    "app.title": "Guichet — agent desktop",
    "app.name": "Guichet",
    "skip": "Skip to content",
    "lang.switch": "Français",
    "lang.switch.label": "Passer en français",
    "signin.title": "Sign in",
    "signin.login": "Login",
    "signin.password": "Password",
    "signin.submit": "Sign in",
    "signin.busy": "Signing in…",
    "signin.expired": "Your session has expired or was ended: sign in again.",
    "signin.signedout": "You are signed out.",
    "signin.wrong": "Wrong login or password.",
    "signin.help": "Your administrator gave you a login and a password.",
    "signout": "Sign out",
    "nav.accessibility": "Accessibility: partially compliant",
    "nav.desktop": "My desktop",
    "nav.supervisor": "Supervision",
    "error.network": "The server does not answer: trying again in a few seconds.",
    "error.generic": "That failed: {message}",
    "state.title": "My state",
    "state.offline": "Offline",
    "state.available": "Available",
    "state.paused": "Paused",
    "state.paused.reason": "Paused ({reason})",
    "state.wrap_up": "Wrap-up until {time}",
    "state.unknown": "Offline (choose “Available” to receive requests)",
    "state.since": "since {time} ({duration})",
    "state.go.available": "Available",
    "state.go.pause": "Pause",
    "state.go.offline": "Offline",
    "state.reason": "Pause reason",
    "reason.break": "Break",
    "reason.lunch": "Lunch",
    "reason.meeting": "Meeting",
    "reason.training": "Training",
    "reason.admin": "Paperwork",
    "device.title": "My phone",
    "device.label": "Number or SIP address calls are bridged to",
    "device.save": "Save",
    "device.saved": "Phone saved.",
    "device.none": "none",
    "stream.connected": "Connected: requests arrive here.",
    "stream.reconnecting": "Connection lost: reconnecting…",
    "sound.enable": "Turn the ringer on",
    "offer.title": "New request",
    "offer.announce": "New {channel} request from {contact} (queue {queue}).",
    "offer.channel": "Channel",
    "offer.contact": "Contact",
    "offer.queue": "Queue",
    "offer.why": "Why me",
    "offer.deadline": "Accept before",
    "offer.left": "{seconds} s left",
    "offer.accept": "Accept",
    "offer.decline": "Decline",
    "offer.withdrawn": "The request is no longer offered ({reason}).",
    "offer.transfer": "Transferred by {agent}: {note}",
    "offer.history": "Contact history",
    "offer.history.none": "No earlier contact.",
    "work.title": "My requests in hand",
    "work.none": "No request in hand.",
    "work.capacity": "{count} in hand",
    "channel.voice": "call",
    "channel.email": "email",
    "channel.sms": "SMS",
    "channel.chat": "chat",
    "conv.title": "Conversation",
    "conv.empty": "No message yet.",
    "conv.inbound": "From {from}",
    "conv.outbound": "Sent by {agent}",
    "conv.outbound.system": "Automatic message",
    "conv.attachments": "Attachments",
    "conv.attachment.unavailable": "{name} (not kept)",
    "conv.voicemail": "Voicemail",
    "conv.voicemail.link": "Listen to the recording",
    "conv.typing": "The contact is typing…",
    "reply.label": "Reply",
    "reply.subject": "Subject (empty: “Re:” and the subject received)",
    "reply.send": "Send",
    "reply.sent": "Message sent.",
    "reply.voice": "A call is handled on the phone: no written reply.",
    "complete.title": "Complete",
    "complete.code": "Wrap-up code",
    "complete.code.free": "Wrap-up code (free text)",
    "complete.notes": "Notes",
    "complete.submit": "Complete the request",
    "complete.done": "Request completed ({code}).",
    "transfer.title": "Transfer",
    "transfer.to.queue": "To a queue",
    "transfer.to.agent": "To an agent",
    "transfer.target": "Queue or agent id",
    "transfer.note": "Note for whoever takes it",
    "transfer.submit": "Transfer",
    "transfer.done": "Request transferred.",
    "sup.title": "Supervision",
    "sup.refused": "This page is for supervisors. You are signed in as {role} ({login}): go back to your desktop.",
    "sup.agents": "Agents",
    "sup.col.id": "Id",
    "sup.col.name": "Name",
    "sup.col.state": "State",
    "sup.col.load": "Requests in hand",
    "sup.signin": "Sign in first.",
    "role.agent": "an agent",
    "role.supervisor": "a supervisor",
    "role.admin": "an administrator",
    "role.integrator": "an integrator",
  },
};

const KEY = "guichet.lang";

/** Adds a page's own texts (`{ fr: {...}, en: {...} }`) to the common ones. */
export function add(more) {
  for (const l of ["fr", "en"]) Object.assign(TEXTS[l], more[l] || {});
}

export function lang() {
  const chosen = localStorage.getItem(KEY);
  if (chosen === "fr" || chosen === "en") return chosen;
  return (navigator.language || "fr").toLowerCase().startsWith("en") ? "en" : "fr";
}

/** The text `key` in the current language, with `{name}` replaced by `vars.name`. */
export function t(key, vars) {
  const texts = TEXTS[lang()];
  let text = texts[key] ?? TEXTS.fr[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) text = text.split("{" + k + "}").join(String(v));
  return text;
}

/** Fills every `[data-i18n]` element's text (and `[data-i18n-label]`'s aria-label). */
export function apply(root) {
  document.documentElement.lang = lang();
  for (const el of (root || document).querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of (root || document).querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  if (document.body && document.body.dataset.title) document.title = t(document.body.dataset.title);
}

/** Wires the header's language button. */
export function wireSwitch(button, onChange) {
  button.addEventListener("click", () => {
    localStorage.setItem(KEY, lang() === "fr" ? "en" : "fr");
    apply();
    if (onChange) onChange();
  });
}

export function timeOf(ms) {
  return new Date(ms).toLocaleTimeString(lang() === "fr" ? "fr-FR" : "en-GB", { hour: "2-digit", minute: "2-digit" });
}

export function dateTimeOf(ms) {
  return new Date(ms).toLocaleString(lang() === "fr" ? "fr-FR" : "en-GB", { dateStyle: "short", timeStyle: "short" });
}

export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${String(s % 60).padStart(2, "0")} s`;
}
