// The File System Access API is Chromium's (and Electron's); other browsers get an <input type=file>
// to open and a download to save. TypeScript's DOM library does not declare it yet.
interface WritableFile {
  write(data: string): Promise<void>;
  close(): Promise<void>;
}
interface SaveHandle {
  readonly name: string;
  createWritable(): Promise<WritableFile>;
}
interface SavePickerWindow {
  showSaveFilePicker?: (options: {
    suggestedName: string;
    types: { description: string; accept: Record<string, string[]> }[];
  }) => Promise<SaveHandle>;
}

/** Saves text under a name the user picks; resolves with the name, or undefined when the user cancelled. */
export async function saveDocumentFile(suggestedName: string, text: string): Promise<string | undefined> {
  const picker = (window as unknown as SavePickerWindow).showSaveFilePicker;
  if (picker !== undefined) {
    try {
      const handle = await picker({
        suggestedName,
        types: [
          {
            description: 'Desired state (JSON with comments)',
            accept: { 'application/json': ['.jsonc', '.json'] },
          },
        ],
      });
      const out = await handle.createWritable();
      await out.write(text);
      await out.close();
      return handle.name;
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') return undefined;
      // a denied permission (e.g. in the Electron shell) falls back to a download
    }
  }
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = suggestedName;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return suggestedName;
}
