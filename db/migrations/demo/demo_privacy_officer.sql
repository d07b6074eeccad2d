-- Demo profile only: Grace Okafor (PRV01, migration 0020), the demo's privacy officer, signs in with
-- the demo password `password123` (argon2id, a salt of its own, precomputed like the staff's).
UPDATE employees SET password_hash = '$argon2id$v=19$m=19456,t=2,p=1$VrVZSK8uVVxcOYtPdNoxeA$coPYLLCc/KaDDbeQcFsQNjDsQV0gY5mJyyKXJyPtWrc'
WHERE employee_id = 'PRV01' AND password_hash LIKE '!%';
