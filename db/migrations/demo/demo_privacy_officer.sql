-- Demo profile only: Grace Okafor (PRV01, migration 0020), the demo's privacy officer, signs in with
-- the demo password `password123` (the same argon2id hash as D01's: a hash of that password).
UPDATE employees SET password_hash = '$argon2id$v=19$m=19456,t=2,p=1$4QRTa/fQocZhfkUbNoYbfg$2LZEKJ4Gsp/GypHqzHEKJB3edeIUHr+hVRIMurSxaKQ'
WHERE employee_id = 'PRV01' AND password_hash LIKE '!%';
