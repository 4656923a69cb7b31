//! Outgoing email: rendered per tenant (its `DEFAULT_FROM_EMAIL`, links on its `SITE_URL`,
//! dates in its time zone) and sent by the `send_email` job, through SMTP when `SMTP_URL`
//! is set, else written as `.eml` files into `EMAIL_DIR`.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Secret;

#[derive(clap::Args, Debug, Clone)]
pub struct MailConfig {
    /// SMTP server: `smtp://user:password@mail.example:587?tls=required` (STARTTLS),
    /// `smtps://...:465` (TLS), or `smtp://host:25` (plain, for a local relay).
    /// When unset, emails are written as .eml files into EMAIL_DIR.
    #[arg(long = "smtp-url", env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// Folder the .eml files go to when no SMTP server is configured.
    #[arg(long = "email-dir", env = "EMAIL_DIR", default_value = ".data/outbox")]
    pub email_dir: PathBuf,

    /// How long one SMTP exchange may take, in seconds.
    #[arg(
        long = "smtp-timeout-seconds",
        env = "SMTP_TIMEOUT_SECONDS",
        default_value_t = 20
    )]
    pub smtp_timeout_seconds: u64,
}

impl MailConfig {
    pub fn files(dir: impl Into<PathBuf>) -> Self {
        Self {
            smtp_url: None,
            email_dir: dir.into(),
            smtp_timeout_seconds: 20,
        }
    }
}

/// A rendered email.
#[derive(Debug, Clone)]
pub struct Email {
    pub from: String,
    pub from_name: String,
    pub to: String,
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub attachments: Vec<EmailAttachment>,
}

impl Email {
    /// An email to one person (`(address, name)`), greeted by name, or by address when they
    /// have none.
    pub fn letter(
        from: String,
        from_name: String,
        (email, name): (String, String),
        subject: String,
        body: &str,
    ) -> Self {
        let greeting = if name.is_empty() {
            email.clone()
        } else {
            name.clone()
        };
        Self {
            from,
            from_name,
            to: email,
            to_name: name,
            subject,
            text: format!("Hello {greeting},\n\n{body}"),
            attachments: Vec::new(),
        }
    }
}

/// A file sent along (an invoice's PDF).
#[derive(Debug, Clone)]
pub struct EmailAttachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// One line of a header as a display name: control characters (which could end the header
/// or start another) become spaces.
fn display_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The message `email` makes, encoded once here so that a fault in encoding is found
/// before any transport is involved.
fn compose(email: &Email) -> anyhow::Result<Message> {
    let from = Mailbox::new(Some(display_name(&email.from_name)), email.from.parse()?);
    let to_name = Some(display_name(&email.to_name)).filter(|n| !n.is_empty());
    let to = Mailbox::new(to_name, email.to.parse()?);
    let subject = display_name(&email.subject);
    let builder = Message::builder().from(from).to(to).subject(subject);
    let message = if email.attachments.is_empty() {
        builder.header(ContentType::TEXT_PLAIN).body(email.text.clone())?
    } else {
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(email.text.clone()));
        for file in &email.attachments {
            let content_type = ContentType::parse(&file.content_type)
                .map_err(|e| anyhow::anyhow!("attachment content type: {e}"))?;
            parts = parts
                .singlepart(Attachment::new(file.filename.clone()).body(file.bytes.clone(), content_type));
        }
        builder.multipart(parts)?
    };
    let _ = message.formatted();
    Ok(message)
}

pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

impl Mailer {
    pub fn new(config: &MailConfig) -> anyhow::Result<Self> {
        match &config.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| anyhow::anyhow!("SMTP_URL is not a usable SMTP address: {e}"))?
                    .timeout(Some(Duration::from_secs(config.smtp_timeout_seconds)))
                    .build();
                Ok(Self::Smtp(transport))
            }
            None => Ok(Self::Files {
                transport: AsyncFileTransport::new(&config.email_dir),
                dir: config.email_dir.clone(),
            }),
        }
    }

    /// Sends (or writes) one email; returns where it went, for the log.
    pub async fn send(&self, email: &Email) -> anyhow::Result<String> {
        let message = std::panic::catch_unwind(|| compose(email))
            .map_err(|_| anyhow::anyhow!("the email could not be encoded"))??;
        match self {
            Self::Smtp(transport) => {
                let response = transport
                    .send(message)
                    .await
                    .map_err(|e| anyhow::anyhow!("SMTP: {e}"))?;
                Ok(format!("smtp {}", response.code()))
            }
            Self::Files { transport, dir } => {
                tokio::fs::create_dir_all(dir).await?;
                let id = transport.send(message).await?;
                Ok(format!("file {}", dir.join(format!("{id}.eml")).display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Email, MailConfig, Mailer};

    /// A name that would end the header and add one is sent as one line of text; nothing
    /// panics however odd the name.
    #[tokio::test]
    async fn names_with_control_characters_make_a_plain_header_and_no_panic() {
        let dir = std::env::temp_dir().join(format!("crowdminder-mail-{}", uuid::Uuid::new_v4().simple()));
        let config = MailConfig::files(&dir);
        let mailer = Mailer::new(&config).unwrap();
        for name in ["Eve\r\nBcc: all@evil.test", "bell\u{7}\u{0}name", "\u{1b}[31m"] {
            let email = Email::letter(
                "no-reply@acme.test".to_owned(),
                "Acme\nX-Injected: yes".to_owned(),
                ("someone@acme.test".to_owned(), name.to_owned()),
                "Welcome\r\nBcc: all@evil.test".to_owned(),
                "Hello",
            );
            mailer.send(&email).await.unwrap();
        }
        let mut sent = 0;
        for file in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let headers = text.split("\r\n\r\n").next().unwrap();
            assert!(
                !headers
                    .lines()
                    .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Injected:")),
                "{headers}"
            );
            sent += 1;
        }
        assert_eq!(sent, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
