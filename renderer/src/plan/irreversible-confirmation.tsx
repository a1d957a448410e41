import { toggled } from './irreversible.js';

interface IrreversibleConfirmationProps {
  /** `plugin/resource` names, as the plan lists them. */
  irreversible: readonly string[];
  confirmed: ReadonlySet<string>;
  onChange: (confirmed: ReadonlySet<string>) => void;
  disabled?: boolean;
}

/** One checkbox per irreversible change, each naming it: the admin confirms them one by one. */
export function IrreversibleConfirmation({
  irreversible,
  confirmed,
  onChange,
  disabled = false,
}: IrreversibleConfirmationProps) {
  return (
    <fieldset
      className="irreversible-confirmation"
      data-testid="irreversible-confirmation"
      disabled={disabled}
    >
      <legend>
        {irreversible.length === 1
          ? 'This change cannot be undone.'
          : `These ${irreversible.length} changes cannot be undone.`}{' '}
        They run last, after every other change; a rollback does not reverse them.
      </legend>
      {irreversible.map((name) => (
        <label key={name} className="confirm-item">
          <input
            type="checkbox"
            data-testid="confirm-irreversible"
            data-resource={name}
            checked={confirmed.has(name)}
            onChange={(e) => onChange(toggled(confirmed, name, e.target.checked))}
          />
          <span>
            I confirm <code>{name}</code>, knowing it cannot be undone
          </span>
        </label>
      ))}
    </fieldset>
  );
}
