// Edits in progress, by message id: a message scrolled out of the (virtual) list, or a view
// reloaded after a resync, comes back with its edit box open and what was typed in it.
export const openEdits = new Map<string, string>();
