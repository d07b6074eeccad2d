-- Demo profile only (HG_DEMO=1 or `python -m healthguard.migrate --demo`; `make up` and the tests
-- use it): the seeded staff sign in with the demo password `password123`. Hashes precomputed once
-- (argon2id, a salt each), so seeding costs no hashing. Only accounts without a usable password are
-- touched: a demo password someone changed stays changed. Never run this in a real deployment.
UPDATE employees e SET password_hash = demo.password_hash, must_change_password = false
FROM (VALUES
    ('N01', '$argon2id$v=19$m=19456,t=2,p=1$v0NiS3cys3Qr00vm2Ka5xw$xDHxT35YVHrKG9sSEgRqBMguNiZI+d6rjnfDIT5Jrz0'),
    ('N02', '$argon2id$v=19$m=19456,t=2,p=1$GDFtHKXfSDFRzoKDbFzDiw$BOV7tkXkT1cnPRQPijwS9p/eWmmbcDH8KL2lsk3RfSU'),
    ('N03', '$argon2id$v=19$m=19456,t=2,p=1$JeOVmbLes0QwwW+BzXvzIw$sBa6C8bve90mfgLrkCfFx4AMq4M2/MzUrDqQpdgu66g'),
    ('N04', '$argon2id$v=19$m=19456,t=2,p=1$T0OTbjY/Ngs+EncAMs9iDg$twQtLsmu9jVGjF0U1F54p8ycS0rv2shQndZF2wMckpU'),
    ('N05', '$argon2id$v=19$m=19456,t=2,p=1$ecFO6MdJutbTKvRMczf4RA$kSpbJQLoJNTm3CTsMurdk6aQx2M092fXhCvLghEj6rI'),
    ('N06', '$argon2id$v=19$m=19456,t=2,p=1$3zhVcOgJf6/FVIeJC881gQ$igubutvretvqQA/4cYF3z8C9q2SHArqKP5+icgMjuIA'),
    ('D01', '$argon2id$v=19$m=19456,t=2,p=1$4QRTa/fQocZhfkUbNoYbfg$2LZEKJ4Gsp/GypHqzHEKJB3edeIUHr+hVRIMurSxaKQ'),
    ('D02', '$argon2id$v=19$m=19456,t=2,p=1$Bc26iEBO0QrghiK5ySmZQQ$BqHJI7fuZ35e1l4PlPk9zgpw/ziZ2272guwMb3redrU'),
    ('D03', '$argon2id$v=19$m=19456,t=2,p=1$5WJrvDs4JFipYNHRBgssYA$K6/O2uQF/YWI/auuN1ycutV2ivmFJeaGiueTKXVDatA'),
    ('D04', '$argon2id$v=19$m=19456,t=2,p=1$xry6Zggho3lwMBTP4j5KGw$92zs1rGiEkKdAVd2kfXFVrIRn6VjUn/J3hD1eLByQWI'),
    ('S01', '$argon2id$v=19$m=19456,t=2,p=1$Lb9RkGCwGOBklSF81GnJGg$ykCIM9gr+oeFCnkKaxV7CBLg2TTmR4IBUYir5jh87Jc'),
    ('S02', '$argon2id$v=19$m=19456,t=2,p=1$CCVeeG7CFmQyLJKbC9v8QQ$k3NTkg8uXIoBc82ztWg/8HITt24gaV+XdDmV/6/tfgs'),
    ('S03', '$argon2id$v=19$m=19456,t=2,p=1$cZmH3dSe4/MYSg7BP8f4jQ$l9lFcfiGPQxisQPJQy4UVGYYUm7A+1Y7O1LhO/yU2YE'),
    ('S04', '$argon2id$v=19$m=19456,t=2,p=1$IyGU5lhAqPm+Xsey8AGL+w$3zGnBn7GJ7Kmt2IEkwqDB+NgMMZMUMLsEGYPvZ7rnls'),
    ('S05', '$argon2id$v=19$m=19456,t=2,p=1$t0a48JVAuoeb0U2FHFOzYw$UC21JpazVU/EIEEgB7d7qECphEsSEHCp5PCX7uJ/3wY'),
    ('S06', '$argon2id$v=19$m=19456,t=2,p=1$V6pOqo5de1HHwQin6bXIcA$SdNc4H9JlDdrI2uP1DUfnrTy96OX133UxlpIBmgUSxs'),
    ('S07', '$argon2id$v=19$m=19456,t=2,p=1$lhGTqByd51fbB5ZZMcguIg$1WrqW3rBii94agPAvg4Shrq3OF3WPLwiJco6BtzK2ro'),
    ('S08', '$argon2id$v=19$m=19456,t=2,p=1$37sAsyyyanczhJUhlI3fmg$MYBjpRqGVUKlnHbEgVnI0V/yCG8tBVGvo76xZB5vg+k'),
    ('S09', '$argon2id$v=19$m=19456,t=2,p=1$T0xi8GxbH8DB91xsNh6geQ$grA8GlSJWcDN/XLmXSZlJdXfdcUzkwWiG8ldRYA4xHg'),
    ('S10', '$argon2id$v=19$m=19456,t=2,p=1$4mGHXirFACSXB1dtAwRFBg$4kddibph0cLdHsqwzQ2OP4BNHxyNuAH0z02Sp0P6jTg'),
    ('S11', '$argon2id$v=19$m=19456,t=2,p=1$omolvvl/ur1V4qpuDclYgA$I0Im2tOrKXCt3O7j3rJmOA7ST91UyyOlYDWuk5Ub7vA'),
    ('S12', '$argon2id$v=19$m=19456,t=2,p=1$+aH90ZAyeRLlSIKsfbKLvw$enn/fabtr50wkXD7sVYlL/YmqZAnQynOzn00YD5lLWc'),
    ('E01', '$argon2id$v=19$m=19456,t=2,p=1$0h2hVOMRWdLCFEKnWODtaQ$D5++isTsuEKwvaA0vWmnmpU9MR4wJXlDHDzq3dEYIVI'),
    ('E02', '$argon2id$v=19$m=19456,t=2,p=1$agrCyfcVyUAbUonz3yw2vw$hYq0mY4RNb3u0iZy/EAMUcwzW8bD/h701O5vQtpfdeQ')
) AS demo (employee_id, password_hash)
WHERE e.employee_id = demo.employee_id AND e.password_hash LIKE '!%';
