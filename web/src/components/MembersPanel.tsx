// A channel's members, with adding and removing people for those allowed to.
import { useEffect, useMemo, useRef, useState } from "react";
import { VList } from "virtua";
import { allMembers, api } from "../api";
import { useT } from "../i18n";
import { applyMembershipChange } from "../state/model";
import { onMembershipChange, useApp, type MembershipChange } from "../state/store";
import type { Conversation, Member, MyState, User } from "../types";
import { Avatar, ErrorNote } from "./common";
import { PeoplePicker } from "./Dialogs";
import { ProfileCard } from "./ProfileCard";

export function MembersPanel({ conversation, me, onClose }: { conversation: Conversation; me: MyState | null; onClose: () => void }) {
  const t = useT();
  const users = useApp((s) => s.users);
  const [members, setMembers] = useState<Member[]>([]);
  const memberIds = useMemo(() => members.map((m) => m.user_id), [members]);
  const [error, setError] = useState<unknown>(null);
  const [adding, setAdding] = useState<string[]>([]);
  const [profile, setProfile] = useState<User | null>(null);
  // A guest holding a channel's admin role does not administer it (the server refuses).
  const guest = useApp((s) => s.me?.role === "guest");
  const admin = me?.role === "admin" && !guest;

  // Only the latest load is shown (an older one finishing last would undo a newer one).
  // Membership events are applied to the list as they come (a big channel is not read again
  // for each), and again to a load in flight when it lands: the changes are idempotent, so a
  // load that already holds one is unchanged by it.
  const loads = useRef(0);
  const duringLoad = useRef<MembershipChange[]>([]);
  // An answer to my add or remove is shown only if no event came meanwhile (that one is newer).
  const changesSeen = useRef(0);
  const loading = useRef(false);
  async function load() {
    const mine = ++loads.current;
    duringLoad.current = [];
    loading.current = true;
    try {
      const list = await allMembers(conversation.id);
      if (mine === loads.current) setMembers(duringLoad.current.reduce(applyMembershipChange, list));
    } catch (e) {
      if (mine === loads.current) setError(e);
    } finally {
      if (mine === loads.current) {
        loading.current = false;
        duringLoad.current = [];
      }
    }
  }

  useEffect(
    () =>
      onMembershipChange(conversation.id, (change) => {
        changesSeen.current += 1;
        if (loading.current) duringLoad.current.push(change);
        setMembers((list) => applyMembershipChange(list, change));
      }),
    [conversation.id],
  );

  // Read when opened, and again after a reload of state (events were missed).
  const reloads = useApp((s) => s.reloads);
  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [conversation.id, reloads]);

  async function add() {
    if (!adding.length) return;
    try {
      const seen = changesSeen.current;
      const added = await api.addMembers(conversation.id, adding);
      setAdding([]);
      // Shown at once (the event, when it comes, changes nothing more).
      if (seen === changesSeen.current) setMembers((list) => applyMembershipChange(list, { type: "members.added", members: added.items }));
    } catch (e) {
      setError(e);
    }
  }

  async function remove(userId: string) {
    const name = useApp.getState().users[userId]?.display_name ?? "";
    if (!confirm(t("conv.confirmRemove", { name }))) return;
    try {
      const seen = changesSeen.current;
      await api.removeMember(conversation.id, userId);
      if (seen === changesSeen.current) setMembers((list) => applyMembershipChange(list, { type: "members.removed", user_ids: [userId] }));
    } catch (e) {
      setError(e);
    }
  }

  const canInvite = !!me && (admin || conversation.kind === "public" || conversation.kind === "private" || conversation.kind === "project");
  return (
    <aside className="side-panel" aria-label={t("conv.members")}>
      <header>
        <h2>
          {t("conv.members")} · {conversation.member_count}
        </h2>
        <button className="icon close" onClick={onClose} aria-label={t("common.close")}>
          ×
        </button>
      </header>
      <ErrorNote error={error} />
      {canInvite && (
        <div className="add-members">
          <PeoplePicker selected={adding} onChange={setAdding} exclude={memberIds} label={t("conv.invite")} />
          <button className="primary small" disabled={!adding.length} onClick={() => void add()}>
            {t("conv.invite")}
          </button>
        </div>
      )}
      {/* Only the rows on screen are rendered (a channel may have thousands of members): so
          only their avatars follow presence, within the server's 500. */}
      {members.length === 0 && !error && <p className="muted">{t("common.loading")}</p>}
      <VList className="people" role="list" style={{ flex: 1 }} data={members}>
        {(m: Member) => {
          const u = users[m.user_id];
          return (
            <div key={m.user_id} role="listitem" className="person-row">
              <button className="person" onClick={() => u && setProfile(u)}>
                <Avatar user={u} size={28} />
                <span>{u?.display_name ?? "…"}</span>
                <span className="muted">{m.role === "admin" ? t("memberRole.admin") : m.role === "poster" ? t("memberRole.poster") : u?.title}</span>
              </button>
              {admin && m.direct && !m.via_department && m.user_id !== useApp.getState().me?.id && (
                <button className="small" onClick={() => void remove(m.user_id)}>
                  {t("conv.remove")}
                </button>
              )}
            </div>
          );
        }}
      </VList>
      {profile && <ProfileCard user={profile} onClose={() => setProfile(null)} />}
    </aside>
  );
}
