-- Demo profile only: Dr. Michael Brooks (D01) is the demo's account administrator, as the first
-- supervisor made by `python -m oncall.accounts create-admin` is in a real deployment. Only while
-- nobody is one, so a demo whose administrators were changed keeps them.
UPDATE employees SET is_account_admin = true
WHERE employee_id = 'D01' AND NOT EXISTS (SELECT 1 FROM employees WHERE is_account_admin);
