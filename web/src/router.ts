// Path-based routes with the History API (the server answers every non-API path with the app).
import { create } from "zustand";

export type Route =
  | { name: "home" }
  | { name: "setup" }
  | { name: "signin" }
  | { name: "conversation"; id: string; thread?: string; message?: string }
  | { name: "browse" }
  | { name: "directory"; department?: string }
  | { name: "admin-users" }
  | { name: "admin-departments" }
  | { name: "settings" }
  | { name: "threads" }
  | { name: "search"; q: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An id taken from a link, if it is one: links are typed and pasted by anyone, and their ids
 * go into API paths (a `..%2F` must not steer a request elsewhere). */
function id(part: string | null | undefined): string | undefined {
  return part && UUID.test(part) ? part.toLowerCase() : undefined;
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return ""; // a malformed escape (`%E0`): no id, rather than a page that fails to load
  }
}

export function parseRoute(path: string, search = ""): Route {
  const parts = path.split("/").filter(Boolean).map(decode);
  const q = new URLSearchParams(search);
  switch (parts[0]) {
    case "setup":
      return { name: "setup" };
    case "signin":
      return { name: "signin" };
    case "c": {
      const conversation = id(parts[1]);
      if (conversation)
        return {
          name: "conversation",
          id: conversation,
          thread: parts[2] === "t" ? id(parts[3]) : undefined,
          message: id(q.get("m")),
        };
      return { name: "home" };
    }
    case "browse":
      return { name: "browse" };
    case "directory":
      return { name: "directory", department: id(parts[1]) };
    case "admin":
      return parts[1] === "departments" ? { name: "admin-departments" } : { name: "admin-users" };
    case "settings":
      return { name: "settings" };
    case "threads":
      return { name: "threads" };
    case "search":
      return { name: "search", q: q.get("q") ?? "" };
    default:
      return { name: "home" };
  }
}

export const useRoute = create<{ route: Route }>(() => ({ route: parseRoute(location.pathname, location.search) }));

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else if (location.pathname + location.search !== path) history.pushState(null, "", path);
  useRoute.setState({ route: parseRoute(location.pathname, location.search) });
}

window.addEventListener("popstate", () => useRoute.setState({ route: parseRoute(location.pathname, location.search) }));

export const paths = {
  conversation: (id: string) => `/c/${id}`,
  thread: (id: string, root: string) => `/c/${id}/t/${root}`,
  message: (id: string, msg: string) => `/c/${id}?m=${msg}`,
  search: (q: string) => `/search?q=${encodeURIComponent(q)}`,
};
