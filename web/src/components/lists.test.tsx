// Lists sorted in the app's language follow it when the person switches language.
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { useLang } from "../i18n";
import { applyEvent, emptyModel, loadConversations, type Model } from "../state/model";
import { useApp } from "../state/store";
import type { Conversation, ConversationKind, Department, Message, User } from "../types";
import { PeoplePicker } from "./Dialogs";
import { DepartmentTree } from "./Directory";
import { sidebarLists } from "./Sidebar";

function person(id: string, display_name: string): User {
  return {
    id,
    username: id,
    display_name,
    title: "Sales",
    role: "member",
    status: "active",
    primary_department_id: "d-root",
    secondary_department_ids: [],
    managed_department_ids: [],
    must_change_password: false,
    created_at: 0,
    updated_at: 0,
  };
}

function department(id: string, name: string, parent_id: string | null): Department {
  return { id, name, parent_id, created_at: 0, updated_at: 0 };
}

let root: Root | null = null;
let host: HTMLElement;

function show(ui: React.ReactNode) {
  host = document.body.appendChild(document.createElement("div"));
  root = createRoot(host);
  act(() => root!.render(ui));
}

const texts = (selector: string) => [...host.querySelectorAll(selector)].map((e) => e.textContent?.trim());

beforeAll(() => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
});

afterEach(() => {
  act(() => root?.unmount());
  root = null;
  host?.remove();
  act(() => useLang.setState({ lang: "en" }));
});

describe("lists sorted by name", () => {
  it("re-sort the department tree when the language changes", () => {
    useLang.setState({ lang: "en" });
    useApp.setState({
      departments: {
        "d-root": department("d-root", "Acme", null),
        "d-z": department("d-z", "Zed Lab", "d-root"),
        "d-bei": department("d-bei", "北京", "d-root"),
        "d-an": department("d-an", "安徽", "d-root"),
      },
    });
    const departments = useApp.getState().departments;
    show(<DepartmentTree onSelect={() => undefined} />);
    expect(texts(".tree ul .tree-item")).toEqual(["Zed Lab", "北京", "安徽"]);
    act(() => useLang.setState({ lang: "zh-CN" }));
    expect(useApp.getState().departments).toBe(departments); // the same departments
    expect(texts(".tree ul .tree-item")).toEqual(["安徽", "北京", "Zed Lab"]);
  });

  it("re-sort the people picker's matches when the language changes", () => {
    useLang.setState({ lang: "en" });
    useApp.setState({ users: { a: person("a", "Zoe"), b: person("b", "北辰"), c: person("c", "安娜") } });
    const selected: string[] = [];
    const exclude: string[] = [];
    show(<PeoplePicker selected={selected} exclude={exclude} onChange={() => undefined} label="Invite" />);
    const input = host.querySelector("input")!;
    act(() => {
      Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!.call(input, "sales");
      input.dispatchEvent(new Event("input", { bubbles: true }));
    });
    expect(texts("[role=option] button > span:nth-of-type(2)")).toEqual(["Zoe", "北辰", "安娜"]);
    act(() => useLang.setState({ lang: "zh-CN" }));
    expect(texts("[role=option] button > span:nth-of-type(2)")).toEqual(["安娜", "北辰", "Zoe"]);
  });
});

function conversation(id: string, kind: ConversationKind, name: string, last_message_at: number): Conversation {
  return {
    id,
    kind,
    name,
    topic: "",
    description: "",
    linked_departments: [],
    participant_ids: [],
    last_seq: 1,
    member_count: 2,
    created_at: 0,
    updated_at: 0,
    last_message_at,
  };
}

describe("the sidebar's lists", () => {
  function model(): Model {
    const me = { role: "member" as const, direct: true, via_department: false, read_seq: 1, unread_count: 0, mention_count: 0 };
    return loadConversations({ ...emptyModel(), lastPos: 10 }, [
      { conversation: conversation("dm-old", "dm", "", 1_000), me },
      { conversation: conversation("dm-new", "dm", "", 2_000), me },
      { conversation: conversation("c-z", "public", "Zed", 3_000), me },
      { conversation: conversation("c-bei", "public", "北京", 3_000), me },
      { conversation: conversation("c-an", "public", "安徽", 3_000), me },
    ]);
  }
  const ids = (list: { conv: Conversation }[]) => list.map((c) => c.conv.id);

  it("move a conversation up when a thread reply arrives in it, as the server lists them", () => {
    let m = model();
    expect(ids(sidebarLists(m.conversations, "en").dms)).toEqual(["dm-new", "dm-old"]);
    const reply: Message = {
      id: "m-2",
      conversation_id: "dm-old",
      seq: 2,
      sender_id: "u-bob",
      thread_root_id: "m-1",
      body: "回复",
      mentions: { user_ids: [], department_ids: [], channel: false },
      created_at: 2_500,
      reactions: [],
    };
    m = applyEvent(m, { op: "event", pos: 11, at: 2_500, conversation_id: "dm-old", seq: 2, data: { type: "message.created", message: reply } });
    expect(ids(sidebarLists(m.conversations, "en").dms)).toEqual(["dm-old", "dm-new"]);
  });

  it("order channels by name in the language given", () => {
    const m = model();
    expect(ids(sidebarLists(m.conversations, "en").channels)).toEqual(["c-z", "c-bei", "c-an"]);
    expect(ids(sidebarLists(m.conversations, "zh-CN").channels)).toEqual(["c-an", "c-bei", "c-z"]);
  });
});
